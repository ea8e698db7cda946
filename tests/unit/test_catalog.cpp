// The built-in catalog against the reference transcription (tests/golden/catalog, made by
// scripts/golden/catalog.py from FORMATS.md's model_shapes.py) and the published counts.
#include <catch2/catch.hpp>

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "dmem/catalog.hpp"
#include "dmem/module_tree.hpp"

using namespace dmem;

namespace {

// ---- a small SHA-256 (FIPS 180-4) so the test needs no crypto library ------------------------
class Sha256 {
 public:
  void update(const std::string& data) {
    for (unsigned char c : data) {
      block_[fill_++] = c;
      if (fill_ == 64) {
        compress();
        fill_ = 0;
      }
    }
    length_ += data.size();
  }
  std::string hex() {
    const std::uint64_t bits = length_ * 8;
    block_[fill_++] = 0x80;
    if (fill_ > 56) {
      while (fill_ < 64) block_[fill_++] = 0;
      compress();
      fill_ = 0;
    }
    while (fill_ < 56) block_[fill_++] = 0;
    for (int i = 7; i >= 0; --i) block_[fill_++] = static_cast<std::uint8_t>(bits >> (8 * i));
    compress();
    static const char* digits = "0123456789abcdef";
    std::string out;
    for (std::uint32_t v : h_)
      for (int i = 28; i >= 0; i -= 4) out += digits[(v >> i) & 0xF];
    return out;
  }

 private:
  static std::uint32_t rotr(std::uint32_t x, int n) { return (x >> n) | (x << (32 - n)); }
  void compress() {
    static constexpr std::uint32_t k[64] = {
        0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4,
        0xab1c5ed5, 0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe,
        0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f,
        0x4a7484aa, 0x5cb0a9dc, 0x76f988da, 0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7,
        0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc,
        0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b,
        0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070, 0x19a4c116,
        0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
        0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7,
        0xc67178f2};
    std::uint32_t w[64];
    for (int i = 0; i < 16; ++i)
      w[i] = static_cast<std::uint32_t>(block_[4 * i]) << 24 |
             static_cast<std::uint32_t>(block_[4 * i + 1]) << 16 |
             static_cast<std::uint32_t>(block_[4 * i + 2]) << 8 | block_[4 * i + 3];
    for (int i = 16; i < 64; ++i) {
      const std::uint32_t s0 = rotr(w[i - 15], 7) ^ rotr(w[i - 15], 18) ^ (w[i - 15] >> 3);
      const std::uint32_t s1 = rotr(w[i - 2], 17) ^ rotr(w[i - 2], 19) ^ (w[i - 2] >> 10);
      w[i] = w[i - 16] + s0 + w[i - 7] + s1;
    }
    std::uint32_t a = h_[0], b = h_[1], c = h_[2], d = h_[3], e = h_[4], f = h_[5], g = h_[6],
                  h = h_[7];
    for (int i = 0; i < 64; ++i) {
      const std::uint32_t t1 =
          h + (rotr(e, 6) ^ rotr(e, 11) ^ rotr(e, 25)) + ((e & f) ^ (~e & g)) + k[i] + w[i];
      const std::uint32_t t2 =
          (rotr(a, 2) ^ rotr(a, 13) ^ rotr(a, 22)) + ((a & b) ^ (a & c) ^ (b & c));
      h = g;
      g = f;
      f = e;
      e = d + t1;
      d = c;
      c = b;
      b = a;
      a = t1 + t2;
    }
    const std::uint32_t add[8] = {a, b, c, d, e, f, g, h};
    for (int i = 0; i < 8; ++i) h_[i] += add[i];
  }

  std::uint32_t h_[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                         0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
  std::uint8_t block_[64] = {};
  std::size_t fill_ = 0;
  std::uint64_t length_ = 0;
};

std::string sha256_hex(const std::string& text) {
  Sha256 s;
  s.update(text);
  return s.hex();
}

// One "name d0,d1,...\n" line per tensor, sorted by name (what scripts/golden/catalog.py hashes).
std::vector<std::string> canonical_lines(const Component& c) {
  std::vector<std::string> lines;
  lines.reserve(c.tensors.size());
  for (const auto& t : c.tensors) {
    std::string line = t.name + ' ';
    for (std::size_t i = 0; i < t.shape.size(); ++i) {
      if (i) line += ',';
      line += std::to_string(t.shape[i]);
    }
    lines.push_back(line + '\n');
  }
  std::sort(lines.begin(), lines.end());
  return lines;
}

std::string joined(const std::vector<std::string>& lines) {
  std::string s;
  for (const auto& l : lines) s += l;
  return s;
}

std::vector<std::string> split_lines(const std::string& text) {
  std::vector<std::string> out;
  std::size_t start = 0;
  while (start < text.size()) {
    auto nl = text.find('\n', start);
    out.push_back(text.substr(start, nl - start + 1));
    start = nl + 1;
  }
  return out;
}

nlohmann::json load_golden(const std::string& name) {
  std::ifstream in(std::string(DMEM_GOLDEN_DIR) + "/catalog/" + name + ".json");
  REQUIRE(in.good());
  std::stringstream ss;
  ss << in.rdbuf();
  auto j = nlohmann::json::parse(ss.str(), nullptr, false);
  REQUIRE_FALSE(j.is_discarded());
  return j;
}

Model load(const std::string& name) {
  auto r = catalog_model(name);
  INFO(r.status().to_string());
  REQUIRE(r.has_value());
  return std::move(r).value();
}

const Component& component(const Model& m, const std::string& name) {
  const Component* c = m.find(name);
  INFO(m.name << " has no component " << name);
  REQUIRE(c != nullptr);
  return *c;
}

std::uint64_t params_of(const Component& c) {
  std::uint64_t n = 0;
  for (const auto& t : c.tensors)
    if (t.name != "pos_embed.pos_embed") n += t.elements();
  return n;
}

const std::vector<std::string> kNames = {"qwen-image",    "qwen-image-edit", "flux1-dev",
                                         "flux1-schnell", "sd35-large",      "sdxl",
                                         "wan21-t2v-14b"};

}  // namespace

TEST_CASE("sha256 helper matches the FIPS 180-4 examples", "[catalog]") {
  CHECK(sha256_hex("") == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  CHECK(sha256_hex("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  CHECK(sha256_hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq") ==
        "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
}

TEST_CASE("catalog lists every built-in model once, in a stable order", "[catalog]") {
  const auto entries = catalog_entries();
  std::vector<std::string> names;
  for (const auto& e : entries) {
    names.push_back(e.name);
    CHECK_FALSE(e.title.empty());
    CHECK_FALSE(e.pipeline.empty());
    CHECK_FALSE(e.description.empty());
  }
  CHECK(names == kNames);
  for (const auto& e : entries) CHECK(load(e.name).pipeline_class == e.pipeline);
}

TEST_CASE("unknown catalog names give not_found with the known names in the hint", "[catalog]") {
  for (const char* bad : {"", "qwen", "Qwen-Image", "flux1-pro", "sdxl "}) {
    INFO("name '" << bad << "'");
    auto r = catalog_model(bad);
    REQUIRE_FALSE(r.has_value());
    CHECK(r.status().code() == Errc::not_found);
    CHECK(r.status().message().find("no built-in model") != std::string::npos);
    for (const auto& n : kNames) CHECK(r.status().hint().find(n) != std::string::npos);
  }
}

TEST_CASE("catalog models match the reference tensor names and shapes", "[catalog]") {
  for (const auto& name : kNames) {
    INFO("model " << name);
    const Model m = load(name);
    const auto golden = load_golden(name);
    CHECK(m.name == name);
    CHECK(m.source == "catalog");
    CHECK(m.pipeline_class == golden["pipeline_class"].get<std::string>());
    REQUIRE(m.components.size() == golden["components"].size());
    for (std::size_t i = 0; i < m.components.size(); ++i) {
      const auto& c = m.components[i];
      const auto& g = golden["components"][i];
      INFO("component " << c.name);
      CHECK(c.name == g["name"].get<std::string>());
      CHECK(c.class_name == g["class_name"].get<std::string>());
      CHECK(c.tensors.size() == g["tensors"].get<std::size_t>());
      CHECK(params_of(c) == g["params"].get<std::uint64_t>());
      const auto lines = canonical_lines(c);
      if (g.contains("canonical")) {
        // Name the first differing tensors rather than only reporting a hash mismatch.
        const auto want = split_lines(g["canonical"].get<std::string>());
        std::vector<std::string> missing, extra;
        std::set_difference(want.begin(), want.end(), lines.begin(), lines.end(),
                            std::back_inserter(missing));
        std::set_difference(lines.begin(), lines.end(), want.begin(), want.end(),
                            std::back_inserter(extra));
        INFO("missing: " << (missing.empty() ? "-" : missing.front())
                         << " extra: " << (extra.empty() ? "-" : extra.front()));
        CHECK(missing.empty());
        CHECK(extra.empty());
      }
      CHECK(sha256_hex(joined(lines)) == g["sha256"].get<std::string>());
      // Names are unique within a component.
      std::set<std::string> unique;
      for (const auto& t : c.tensors) unique.insert(t.name);
      CHECK(unique.size() == c.tensors.size());
    }
  }
}

TEST_CASE("catalog parameter counts equal the published figures", "[catalog]") {
  struct Want {
    const char* model;
    const char* component;
    std::size_t tensors;
    std::uint64_t params;
  };
  const Want wants[] = {
      {"qwen-image", "transformer", 1933, 20'430'401'088ull},
      {"qwen-image", "text_encoder", 729, 8'292'166'656ull},
      {"qwen-image", "vae", 194, 126'892'531ull},
      {"qwen-image-edit", "transformer", 1933, 20'430'401'088ull},
      {"flux1-dev", "transformer", 1160, 11'901'408'320ull},
      {"flux1-dev", "text_encoder", 196, 123'060'480ull},
      {"flux1-dev", "text_encoder_2", 219, 4'762'310'656ull},
      {"flux1-dev", "vae", 244, 83'819'683ull},
      // schnell has no guidance embedder: two Linear layers fewer.
      {"flux1-schnell", "transformer", 1156,
       11'901'408'320ull - (256 * 3072 + 3072) - (3072 * 3072 + 3072)},
      {"sd35-large", "transformer", 1227, 8'056'627'520ull},
      {"sd35-large", "text_encoder", 197, 123'060'480ull + 768 * 768},
      {"sd35-large", "text_encoder_2", 517, 694'659'840ull},
      {"sd35-large", "text_encoder_3", 219, 4'762'310'656ull},
      {"sd35-large", "vae", 244, 83'819'683ull},
      {"sdxl", "unet", 1680, 2'567'463'684ull},
      {"sdxl", "text_encoder", 196, 123'060'480ull},
      {"sdxl", "text_encoder_2", 517, 694'659'840ull},
      {"sdxl", "vae", 248, 83'653'863ull},
      {"wan21-t2v-14b", "transformer", 1095, 14'288'491'584ull},
      {"wan21-t2v-14b", "text_encoder", 242, 5'680'910'336ull},
      {"wan21-t2v-14b", "vae", 194, 126'892'531ull},
  };
  for (const auto& w : wants) {
    INFO(w.model << " / " << w.component);
    const Model m = load(w.model);
    const Component* c = &component(m, w.component);  // a pointer: GCC 13 -Wdangling-reference
    CHECK(c->tensors.size() == w.tensors);
    CHECK(params_of(*c) == w.params);
  }
  // SD3.5's pos_embed is a persistent buffer stored in the checkpoint: [1, 192*192, 2432].
  const Model sd35 = load("sd35-large");
  const Component* t = &component(sd35, "transformer");
  auto it = std::find_if(t->tensors.begin(), t->tensors.end(),
                         [](const TensorInfo& x) { return x.name == "pos_embed.pos_embed"; });
  REQUIRE(it != t->tensors.end());
  CHECK(it->shape == std::vector<std::uint64_t>{1, 36864, 2432});
  CHECK(it->elements() == 89'653'248ull);
}

TEST_CASE("catalog components carry roles, classes, published dtypes and exact bytes",
          "[catalog]") {
  // model -> component -> (role, class, dtype); dtype choices are documented in docs/catalog.md.
  struct Want {
    const char* component;
    Role role;
    const char* class_name;
    DType dtype;
  };
  const std::map<std::string, std::vector<Want>> wants = {
      {"qwen-image",
       {{"transformer", Role::denoiser, "QwenImageTransformer2DModel", DType::bf16},
        {"text_encoder", Role::text_encoder, "Qwen2_5_VLForConditionalGeneration", DType::bf16},
        {"vae", Role::vae, "AutoencoderKLQwenImage", DType::bf16}}},
      {"qwen-image-edit",
       {{"transformer", Role::denoiser, "QwenImageTransformer2DModel", DType::bf16},
        {"text_encoder", Role::text_encoder, "Qwen2_5_VLForConditionalGeneration", DType::bf16},
        {"vae", Role::vae, "AutoencoderKLQwenImage", DType::bf16}}},
      {"flux1-dev",
       {{"transformer", Role::denoiser, "FluxTransformer2DModel", DType::bf16},
        {"text_encoder", Role::text_encoder, "CLIPTextModel", DType::bf16},
        {"text_encoder_2", Role::text_encoder, "T5EncoderModel", DType::bf16},
        {"vae", Role::vae, "AutoencoderKL", DType::bf16}}},
      {"flux1-schnell",
       {{"transformer", Role::denoiser, "FluxTransformer2DModel", DType::bf16},
        {"text_encoder", Role::text_encoder, "CLIPTextModel", DType::bf16},
        {"text_encoder_2", Role::text_encoder, "T5EncoderModel", DType::bf16},
        {"vae", Role::vae, "AutoencoderKL", DType::bf16}}},
      {"sd35-large",
       {{"transformer", Role::denoiser, "SD3Transformer2DModel", DType::bf16},
        {"text_encoder", Role::text_encoder, "CLIPTextModelWithProjection", DType::bf16},
        {"text_encoder_2", Role::text_encoder, "CLIPTextModelWithProjection", DType::bf16},
        {"text_encoder_3", Role::text_encoder, "T5EncoderModel", DType::bf16},
        {"vae", Role::vae, "AutoencoderKL", DType::bf16}}},
      {"sdxl",
       {{"unet", Role::denoiser, "UNet2DConditionModel", DType::f16},
        {"text_encoder", Role::text_encoder, "CLIPTextModel", DType::f16},
        {"text_encoder_2", Role::text_encoder, "CLIPTextModelWithProjection", DType::f16},
        {"vae", Role::vae, "AutoencoderKL", DType::f16}}},
      {"wan21-t2v-14b",
       {{"transformer", Role::denoiser, "WanTransformer3DModel", DType::f32},
        {"text_encoder", Role::text_encoder, "UMT5EncoderModel", DType::bf16},
        {"vae", Role::vae, "AutoencoderKLWan", DType::f32}}},
  };
  REQUIRE(wants.size() == kNames.size());
  for (const auto& [model, comps] : wants) {
    INFO("model " << model);
    const Model m = load(model);
    REQUIRE(m.components.size() == comps.size());
    for (std::size_t i = 0; i < comps.size(); ++i) {
      const auto& c = m.components[i];
      INFO("component " << c.name);
      CHECK(c.name == comps[i].component);
      CHECK(c.role == comps[i].role);
      CHECK(c.class_name == comps[i].class_name);
      CHECK(c.files.empty());
      for (const auto& t : c.tensors) {
        INFO("tensor " << t.name);
        REQUIRE_FALSE(t.shape.empty());
        CHECK(t.dtype == comps[i].dtype);
        CHECK(t.file == kNoFile);
        CHECK(t.nbytes == t.elements() * dtype_info(t.dtype).block_bytes);
        CHECK(t.nbytes == dtype_bytes(t.dtype, t.elements()).value());
      }
    }
  }
  // Spot-check absolute sizes: Qwen-Image's transformer is 40.86 GB in bf16.
  const Model q = load("qwen-image");
  std::uint64_t bytes = 0;
  for (const auto& t : component(q, "transformer").tensors) bytes += t.nbytes;
  CHECK(bytes == 2 * 20'430'401'088ull);
}

TEST_CASE("catalog configs are valid JSON and agree with ArchInfo", "[catalog]") {
  for (const auto& name : kNames) {
    const Model m = load(name);
    for (const auto& c : m.components) {
      INFO(name << " / " << c.name);
      auto j = nlohmann::json::parse(c.config_json, nullptr, false);
      REQUIRE_FALSE(j.is_discarded());
      REQUIRE(j.is_object());
      if (j.contains("_class_name")) CHECK(j["_class_name"] == c.class_name);
      if (j.contains("architectures")) CHECK(j["architectures"][0] == c.class_name);
      const ArchInfo& a = c.arch;
      CHECK_FALSE(a.family.empty());
      CHECK(a.hidden > 0);
      CHECK(a.layers > 0);
      CHECK(a.heads > 0);
      CHECK(a.head_dim > 0);
      if (c.role == Role::denoiser) {
        CHECK(a.ffn > 0);
        CHECK(a.patch > 0);
        CHECK(a.in_channels > 0);
        CHECK(a.latent_channels > 0);
        CHECK(a.vae_scale == 8);
        CHECK(a.text_dim > 0);
        CHECK(a.max_text_tokens > 0);
      } else if (c.role == Role::text_encoder) {
        CHECK(a.ffn > 0);
        CHECK(a.vocab > 0);
        CHECK(a.text_dim == a.hidden);
        CHECK(a.max_text_tokens > 0);
      } else {
        CHECK(c.role == Role::vae);
        CHECK(a.in_channels == 3);
        CHECK(a.vae_scale == 8);
        CHECK(a.latent_channels > 0);
      }
      // Where the config names a field the ArchInfo also holds, they agree.
      if (j.contains("num_layers") && c.role == Role::denoiser && !j.contains("num_single_layers"))
        CHECK(j["num_layers"].get<std::uint32_t>() == a.layers);
      if (j.contains("num_single_layers"))
        CHECK(j["num_layers"].get<std::uint32_t>() + j["num_single_layers"].get<std::uint32_t>() ==
              a.layers);
      if (j.contains("num_attention_heads")) CHECK(j["num_attention_heads"] == a.heads);
      if (j.contains("num_heads")) CHECK(j["num_heads"] == a.heads);
      if (j.contains("num_hidden_layers")) CHECK(j["num_hidden_layers"] == a.layers);
      if (j.contains("hidden_size")) CHECK(j["hidden_size"] == a.hidden);
      if (j.contains("d_model")) CHECK(j["d_model"] == a.hidden);
      if (j.contains("vocab_size")) CHECK(j["vocab_size"] == a.vocab);
      if (j.contains("latent_channels")) CHECK(j["latent_channels"] == a.latent_channels);
      if (j.contains("z_dim")) CHECK(j["z_dim"] == a.latent_channels);
      if (j.contains("in_channels") && c.role == Role::denoiser)
        CHECK(j["in_channels"] == a.in_channels);
    }
  }
  // The published VAE configs that decide whether quant convs exist.
  auto vae_cfg = [](const char* model) {
    const Model m = load(model);
    return nlohmann::json::parse(component(m, "vae").config_json, nullptr, false);
  };
  CHECK(vae_cfg("sdxl")["use_quant_conv"] == true);
  CHECK(vae_cfg("flux1-dev")["use_quant_conv"] == false);
  CHECK(vae_cfg("sd35-large")["use_post_quant_conv"] == false);
  CHECK(nlohmann::json::parse(
            component(load("flux1-schnell"), "transformer").config_json)["guidance_embeds"] ==
        false);
}

TEST_CASE("summarize finds the repeated blocks of the catalog models", "[catalog]") {
  auto sequences = [](const std::string& model, const std::string& comp) {
    const Model m = load(model);
    const auto s = summarize(component(m, comp));
    std::vector<std::pair<std::string, std::size_t>> out;
    for (const auto& seq : s.sequences) out.emplace_back(seq.prefix, seq.blocks.size());
    return out;
  };
  using Seqs = std::vector<std::pair<std::string, std::size_t>>;
  CHECK(sequences("qwen-image", "transformer") == Seqs{{"transformer_blocks", 60}});
  CHECK(sequences("qwen-image", "text_encoder") ==
        Seqs{{"model.layers", 28}, {"visual.blocks", 32}});
  CHECK(sequences("flux1-dev", "transformer") ==
        Seqs{{"transformer_blocks", 19}, {"single_transformer_blocks", 38}});
  CHECK(sequences("sd35-large", "transformer") == Seqs{{"transformer_blocks", 38}});
  CHECK(sequences("wan21-t2v-14b", "transformer") == Seqs{{"blocks", 40}});
  CHECK(sequences("flux1-dev", "text_encoder_2") == Seqs{{"encoder.block", 24}});
  CHECK(sequences("wan21-t2v-14b", "text_encoder") == Seqs{{"encoder.block", 24}});
  CHECK(sequences("sdxl", "text_encoder") == Seqs{{"text_model.encoder.layers", 12}});
  CHECK(sequences("sdxl", "text_encoder_2") == Seqs{{"text_model.encoder.layers", 32}});

  // Block sizes add up: every qwen-image transformer block is the same 339.6 M parameters.
  const Model q = load("qwen-image");
  const auto s = summarize(component(q, "transformer"));
  REQUIRE(s.blocks.size() == 60);
  for (const auto& b : s.blocks) CHECK(b.params == s.blocks.front().params);
  CHECK(s.params == 20'430'401'088ull);
  CHECK(s.blocks.front().tensors == 32);
}
