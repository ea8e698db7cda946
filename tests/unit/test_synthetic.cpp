// scale_down and write_synthetic_model: every catalog model shrinks consistently (names, dtypes,
// roles, shapes, ArchInfo), writes as a diffusers folder that open_model reads back equal, with
// deterministic, finite, bounded weights; bad inputs give clear Statuses and leave nothing behind.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <limits>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "dmem/catalog.hpp"
#include "dmem/model.hpp"
#include "dmem/module_tree.hpp"
#include "dmem/synthetic.hpp"
#include "dmem/tensor_source.hpp"
#include "support/test_support.hpp"

using namespace dmem;
using dmem::test::TempDir;
namespace fs = std::filesystem;

namespace {

Model catalog(const std::string& name) {
  auto m = catalog_model(name);
  REQUIRE(m.is_ok());
  return m.value();
}

Model scaled(const Model& m, double factor) {
  ScaleDown o;
  o.factor = factor;
  auto s = scale_down(m, o);
  INFO(s.status().to_string());
  REQUIRE(s.is_ok());
  return s.value();
}

std::uint64_t total_bytes(const Model& m) {
  std::uint64_t n = 0;
  for (const auto& c : m.components)
    for (const auto& t : c.tensors) n += t.nbytes;
  return n;
}

std::map<std::string, const TensorInfo*> by_name(const Component& c) {
  std::map<std::string, const TensorInfo*> out;
  for (const auto& t : c.tensors) out[t.name] = &t;
  return out;
}

std::uint64_t ceil_div(std::uint64_t n, std::uint64_t f) {
  return (n + f - 1) / f;
}

// Entries (leaves) outside every block of `c`, by tensor name.
std::set<std::string> non_block_tensors(const Component& c) {
  const ComponentSummary s = summarize(c);
  std::set<std::string> leaves;
  for (const auto& l : s.leaves)
    if (l.block < 0) leaves.insert(l.name);
  std::set<std::string> out;
  for (const auto& t : c.tensors) {
    const auto dot = t.name.rfind('.');
    if (leaves.count(dot == std::string::npos ? t.name : t.name.substr(0, dot)) != 0)
      out.insert(t.name);
  }
  return out;
}

void check_arch_equal(const ArchInfo& a, const ArchInfo& b) {
  CHECK(a.family == b.family);
  CHECK(a.hidden == b.hidden);
  CHECK(a.layers == b.layers);
  CHECK(a.heads == b.heads);
  CHECK(a.head_dim == b.head_dim);
  CHECK(a.ffn == b.ffn);
  CHECK(a.text_dim == b.text_dim);
  CHECK(a.vocab == b.vocab);
  CHECK(a.in_channels == b.in_channels);
  CHECK(a.latent_channels == b.latent_channels);
  CHECK(a.patch == b.patch);
  CHECK(a.patch_t == b.patch_t);
  CHECK(a.vae_scale == b.vae_scale);
  CHECK(a.max_text_tokens == b.max_text_tokens);
}

std::vector<std::string> files_under(const fs::path& root) {
  std::vector<std::string> out;
  for (const auto& e : fs::recursive_directory_iterator(root))
    if (e.is_regular_file()) out.push_back(fs::relative(e.path(), root).string());
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace

TEST_CASE("scale_down keeps names, dtypes and roles and scales every catalog model consistently",
          "[synthetic]") {
  for (const auto& entry : catalog_entries()) {
    INFO(entry.name);
    const Model m = catalog(entry.name);
    const Model s = scaled(m, 16);
    REQUIRE(s.components.size() == m.components.size());
    CHECK(s.pipeline_class == m.pipeline_class);
    // One scaled size per original size, across the whole pipeline.
    std::map<std::uint64_t, std::uint64_t> dim_map;
    for (std::size_t i = 0; i < m.components.size(); ++i) {
      const Component& a = m.components[i];
      const Component& b = s.components[i];
      INFO(a.name);
      CHECK(b.name == a.name);
      CHECK(b.role == a.role);
      CHECK(b.class_name == a.class_name);
      CHECK(b.files.empty());
      CHECK_FALSE(b.config_json.empty());
      const auto orig = by_name(a);
      for (const auto& t : b.tensors) {
        INFO(t.name);
        auto it = orig.find(t.name);
        REQUIRE(it != orig.end());
        const TensorInfo& o = *it->second;
        CHECK(t.dtype == o.dtype);
        REQUIRE(t.shape.size() == o.shape.size());
        for (std::size_t d = 0; d < t.shape.size(); ++d) {
          CHECK(t.shape[d] <= o.shape[d]);
          CHECK(t.shape[d] >= 1);
          if (o.shape[d] <= kScaleDownKeepDim) CHECK(t.shape[d] == o.shape[d]);
          auto [pos, fresh] = dim_map.emplace(o.shape[d], t.shape[d]);
          CHECK(pos->second == t.shape[d]);
        }
        CHECK(t.nbytes == dtype_bytes(t.dtype, t.elements()).value_or(0));
        CHECK(t.file == kNoFile);
        CHECK(t.offset == 0);
      }
      // Every tensor outside blocks stays.
      const auto kept = by_name(b);
      for (const auto& name : non_block_tensors(a)) CHECK(kept.count(name) == 1);
      // The first blocks of every sequence stay, whole; and some sequence got shorter where the
      // ArchInfo counts layers in blocks.
      const ComponentSummary sa = summarize(a);
      const ComponentSummary sb = summarize(b);
      // (U-Net levels stay whole but lose transformer layers inside: those are checked below.)
      for (const auto& seq : sa.sequences) {
        const std::string first = seq.blocks.front().name + ".";
        for (const auto& t : a.tensors)
          if (t.name.compare(0, first.size(), first) == 0 &&
              (t.name.find(".transformer_blocks.") == std::string::npos ||
               t.name.find(".transformer_blocks.0.") != std::string::npos))
            CHECK(kept.count(t.name) == 1);
      }
      CHECK(sb.blocks.size() <= sa.blocks.size());
      if (a.arch.family == "sdxl-unet") {
        // One transformer layer per attention: 11 attentions in SDXL's U-Net.
        CHECK(b.arch.layers == 11);
        std::size_t to_q = 0;
        for (const auto& t : b.tensors)
          to_q += t.name.find(".attn1.to_q.weight") != std::string::npos;
        CHECK(to_q == 11);
      } else if (a.role != Role::vae && a.arch.layers > 1) {
        CHECK(b.arch.layers >= 1);
        CHECK(b.arch.layers <= ceil_div(a.arch.layers, 16) + 1);
      } else if (a.role == Role::vae) {
        CHECK(b.arch.layers == a.arch.layers);  // VAE levels stay
      }
      // ArchInfo: sizes through the same map as the tensors; heads stay.
      CHECK(b.arch.family == a.arch.family);
      CHECK(b.arch.heads == a.arch.heads);
      CHECK(b.arch.patch == a.arch.patch);
      CHECK(b.arch.max_text_tokens == a.arch.max_text_tokens);
      for (auto [x, y] : {std::pair{a.arch.hidden, b.arch.hidden},
                          {a.arch.ffn, b.arch.ffn},
                          {a.arch.text_dim, b.arch.text_dim},
                          {a.arch.vocab, b.arch.vocab}}) {
        if (dim_map.count(x) != 0) CHECK(dim_map[x] == y);
      }
      if (a.arch.heads != 0 && a.arch.heads * a.arch.head_dim == a.arch.hidden)
        CHECK(b.arch.heads * b.arch.head_dim == b.arch.hidden);
      // Linear layers still chain: an input of the original width has the scaled width.
      for (const auto& t : b.tensors) {
        const TensorInfo& o = *orig.at(t.name);
        if (o.shape.size() == 2 && o.shape[1] == a.arch.hidden) CHECK(t.shape[1] == b.arch.hidden);
      }
    }
    // Total size at the default factor: a few MB to a few hundred.
    const std::uint64_t bytes = total_bytes(s);
    CHECK(bytes >= 5'000'000);
    CHECK(bytes <= 300'000'000);
  }
}

TEST_CASE("scale_down sizes per catalog model", "[.][synthetic-sizes]") {
  for (const auto& entry : catalog_entries()) {
    const Model m = catalog(entry.name);
    std::string line = entry.name + ": " + std::to_string(total_bytes(m) / 1'000'000) + " MB";
    for (double f : {8.0, 16.0, 32.0})
      line += "  /" + std::to_string(static_cast<int>(f)) + " " +
              std::to_string(static_cast<double>(total_bytes(scaled(m, f))) / 1e6) + " MB";
    WARN(line);
  }
}

TEST_CASE("scale_down rejects bad factors", "[synthetic]") {
  const Model m = catalog("sdxl");
  for (double f : {0.0, 0.5, -3.0, 2e6, std::numeric_limits<double>::quiet_NaN(),
                   std::numeric_limits<double>::infinity()}) {
    ScaleDown o;
    o.factor = f;
    auto s = scale_down(m, o);
    REQUIRE_FALSE(s.is_ok());
    CHECK(s.status().code() == Errc::invalid_argument);
    CHECK(s.status().rule() == "synthetic.factor");
  }
  ScaleDown one;
  one.factor = 1;
  auto same = scale_down(m, one);
  REQUIRE(same.is_ok());
  CHECK(total_bytes(same.value()) == total_bytes(m));
}

TEST_CASE("scale_down keeps block-quantized rows whole", "[synthetic]") {
  Model m;
  m.name = "q";
  Component c;
  c.name = "transformer";
  c.role = Role::denoiser;
  for (int i = 0; i < 4; ++i) {
    const std::string p = "blocks." + std::to_string(i) + ".ff.";
    c.tensors.push_back({p + "w1.weight", DType::q4_k, {12288, 3072}, 0});
    c.tensors.push_back({p + "w2.weight", DType::q8_0, {3072, 12288}, 0});
  }
  for (auto& t : c.tensors) t.nbytes = dtype_bytes(t.dtype, t.elements()).value();
  m.components.push_back(c);
  const Model s = scaled(m, 16);
  REQUIRE(s.components.front().tensors.size() == 2);
  for (const auto& t : s.components.front().tensors) {
    INFO(t.name);
    CHECK(t.shape.back() % dtype_info(t.dtype).block_elems == 0);
    CHECK(dtype_bytes(t.dtype, t.elements()).value_or(0) == t.nbytes);
  }
  // 3072 is the innermost dim of a q4_k tensor: a whole 256-value block, everywhere.
  CHECK(s.components.front().tensors[0].shape == std::vector<std::uint64_t>{768, 256});
  CHECK(s.components.front().tensors[1].shape == std::vector<std::uint64_t>{256, 768});
}

TEST_CASE("write_synthetic_model round-trips every catalog model through open_model",
          "[synthetic]") {
  for (const auto& entry : catalog_entries()) {
    INFO(entry.name);
    const Model s = scaled(catalog(entry.name), 32);
    TempDir tmp;
    const std::string dir = tmp.file("model");
    auto written = write_synthetic_model(s, dir, 7);
    INFO(written.status().to_string());
    REQUIRE(written.is_ok());
    CHECK(written.value() == dir);
    auto back = open_model(written.value());
    INFO(back.status().to_string());
    REQUIRE(back.is_ok());
    CHECK(back->source == "diffusers");
    CHECK(back->pipeline_class == s.pipeline_class);
    REQUIRE(back->components.size() == s.components.size());
    for (const auto& want : s.components) {
      INFO(want.name);
      const Component* got = back->find(want.name);
      REQUIRE(got != nullptr);
      CHECK(got->role == want.role);
      CHECK(got->class_name == want.class_name);
      check_arch_equal(got->arch, want.arch);
      REQUIRE(got->tensors.size() == want.tensors.size());
      const auto g = by_name(*got);
      for (const auto& t : want.tensors) {
        INFO(t.name);
        auto it = g.find(t.name);
        REQUIRE(it != g.end());
        CHECK(it->second->dtype == t.dtype);
        CHECK(it->second->shape == t.shape);
        CHECK(it->second->nbytes == t.nbytes);
      }
    }
  }
}

TEST_CASE("synthetic weights are finite and within their documented ranges", "[synthetic]") {
  const Model s = scaled(catalog("flux1-schnell"), 32);
  TempDir tmp;
  auto written = write_synthetic_model(s, tmp.file("m"));
  REQUIRE(written.is_ok());
  auto back = open_model(written.value());
  REQUIRE(back.is_ok());
  std::size_t weights = 0, norms = 0;
  for (const auto& c : back->components) {
    auto src = TensorSource::open(c);
    REQUIRE(src.is_ok());
    for (const auto& t : c.tensors) {
      INFO(c.name << " " << t.name);
      std::vector<unsigned char> raw(t.nbytes);
      REQUIRE(src->read(t, raw.data()).is_ok());
      std::vector<float> v(t.elements());
      REQUIRE(convert(t.dtype, raw.data(), DType::f32, v.data(), v.size()).is_ok());
      const std::string last = t.name.substr(t.name.rfind('.') + 1);
      const bool norm = t.shape.size() == 1 && last == "weight";
      double lo = -1.0 / 64, hi = 1.0 / 64;
      if (norm) {
        lo += 1;
        hi += 1;
        ++norms;
      } else if (t.shape.size() >= 2) {
        const double b = 1.0 / std::sqrt(static_cast<double>(t.elements() / t.shape[0]));
        lo = -b;
        hi = b;
        ++weights;
      }
      const double slack = 1.0 / 128 * (hi - lo);  // bf16 rounding
      double sum = 0;
      for (float x : v) {
        REQUIRE(std::isfinite(x));
        REQUIRE(x >= lo - slack);
        REQUIRE(x <= hi + slack);
        sum += x;
      }
      // Not constant: uniform values spread over the range.
      if (v.size() >= 64)
        CHECK(*std::max_element(v.begin(), v.end()) > *std::min_element(v.begin(), v.end()));
      (void)sum;
    }
  }
  CHECK(weights > 10);
  CHECK(norms > 2);
}

TEST_CASE("the same seed writes the same bytes; another seed different ones", "[synthetic]") {
  const Model s = scaled(catalog("sdxl"), 64);
  TempDir tmp;
  REQUIRE(write_synthetic_model(s, tmp.file("a"), 5).is_ok());
  REQUIRE(write_synthetic_model(s, tmp.file("b"), 5).is_ok());
  REQUIRE(write_synthetic_model(s, tmp.file("c"), 6).is_ok());
  const auto files = files_under(tmp.file("a"));
  REQUIRE(files == files_under(tmp.file("b")));
  REQUIRE(files == files_under(tmp.file("c")));
  bool any_differs = false;
  for (const auto& f : files) {
    INFO(f);
    const auto a = dmem::test::read_file(tmp.file("a") + "/" + f);
    CHECK(a == dmem::test::read_file(tmp.file("b") + "/" + f));
    if (f.find(".safetensors") != std::string::npos)
      any_differs = any_differs || a != dmem::test::read_file(tmp.file("c") + "/" + f);
  }
  CHECK(any_differs);
}

TEST_CASE("write_synthetic_model refuses bad folders and leaves nothing half-written",
          "[synthetic]") {
  const Model s = scaled(catalog("sdxl"), 64);
  TempDir tmp;
  const auto leftovers = [&] {
    std::vector<std::string> out;
    for (const auto& e : fs::directory_iterator(tmp.path()))
      if (e.path().filename().string().find(".synthetic.") != std::string::npos)
        out.push_back(e.path().string());
    return out;
  };

  SECTION("a file") {
    dmem::test::write_file(tmp.file("f"), "x");
    auto r = write_synthetic_model(s, tmp.file("f"));
    REQUIRE_FALSE(r.is_ok());
    CHECK(r.status().code() == Errc::invalid_argument);
    CHECK(r.status().rule() == "synthetic.dir");
    CHECK(r.status().file() == tmp.file("f"));
  }
  SECTION("a folder that is not empty") {
    fs::create_directory(tmp.file("d"));
    dmem::test::write_file(tmp.file("d") + "/keep", "x");
    auto r = write_synthetic_model(s, tmp.file("d"));
    REQUIRE_FALSE(r.is_ok());
    CHECK(r.status().rule() == "synthetic.dir");
    CHECK(fs::exists(tmp.file("d") + "/keep"));
  }
  SECTION("an empty folder is filled") {
    fs::create_directory(tmp.file("e"));
    auto r = write_synthetic_model(s, tmp.file("e"));
    REQUIRE(r.is_ok());
    CHECK(open_model(r.value()).is_ok());
  }
  SECTION("a folder that cannot be created") {
    dmem::test::write_file(tmp.file("f"), "x");
    auto r = write_synthetic_model(s, tmp.file("f") + "/sub");  // parent is a file
    REQUIRE_FALSE(r.is_ok());
    CHECK(r.status().code() == Errc::io_error);
    auto p = write_synthetic_model(s, "/proc/dmem-synthetic-test/model");
    REQUIRE_FALSE(p.is_ok());
    CHECK_FALSE(p.status().message().empty());
  }
  SECTION("a failure while writing removes everything") {
    Model bad = s;
    // Packed fp4 is stored by safetensors but not generated: the last component fails.
    TensorInfo t{"x.weight", DType::f4, {4, 4}, 8};
    bad.components.back().tensors.push_back(t);
    auto r = write_synthetic_model(bad, tmp.file("g"));
    REQUIRE_FALSE(r.is_ok());
    CHECK(r.status().tensor() == "x.weight");
    CHECK_FALSE(fs::exists(tmp.file("g")));
  }
  SECTION("block types that cannot be generated") {
    Model q;
    Component c;
    c.name = "transformer";
    c.tensors.push_back({"a.weight", DType::iq2_xxs, {4, 256}, 0});
    c.tensors.back().nbytes = dtype_bytes(DType::iq2_xxs, 1024).value();
    q.components.push_back(c);
    auto r = write_synthetic_model(q, tmp.file("q"));
    REQUIRE_FALSE(r.is_ok());
    CHECK(r.status().code() == Errc::unsupported);
    CHECK_FALSE(fs::exists(tmp.file("q")));
  }
  SECTION("bad component names") {
    Model bad = s;
    bad.components.front().name = "../x";
    auto r = write_synthetic_model(bad, tmp.file("n"));
    REQUIRE_FALSE(r.is_ok());
    CHECK(r.status().rule() == "synthetic.component_name");
  }
  CHECK(leftovers().empty());
}

TEST_CASE("models with GGML block types are written as one .gguf", "[synthetic]") {
  Model m;
  m.name = "q";
  Component c;
  c.name = "transformer";
  c.role = Role::denoiser;
  const DType types[] = {DType::q4_k, DType::q8_0, DType::q6_k,   DType::q2_k, DType::q3_k,
                         DType::q5_k, DType::q4_0, DType::iq4_nl, DType::mxfp4};
  int i = 0;
  for (DType dt : types) {
    c.tensors.push_back({"blocks." + std::to_string(i++) + ".ff.weight", dt, {64, 256}, 0});
    c.tensors.back().nbytes = dtype_bytes(dt, 64 * 256).value();
  }
  c.tensors.push_back({"norm.weight", DType::f32, {256}, 1024});
  m.components.push_back(c);
  TempDir tmp;
  auto r = write_synthetic_model(m, tmp.file("g"), 3);
  INFO(r.status().to_string());
  REQUIRE(r.is_ok());
  CHECK(r.value() == tmp.file("g") + "/transformer.gguf");
  auto back = open_model(r.value());
  REQUIRE(back.is_ok());
  const Component& got = back->components.front();
  auto src = TensorSource::open(got);
  REQUIRE(src.is_ok());
  REQUIRE(got.tensors.size() == c.tensors.size());
  for (const auto& t : got.tensors) {
    INFO(t.name << " " << dtype_name(t.dtype));
    std::vector<unsigned char> raw(t.nbytes);
    REQUIRE(src->read(t, raw.data()).is_ok());
    std::vector<float> v(t.elements());
    REQUIRE(convert(t.dtype, raw.data(), DType::f32, v.data(), v.size()).is_ok());
    const double bound = t.shape.size() == 1 ? 1.0 + 1.0 / 64 : 1.0 / 16;  // 1/sqrt(256)
    for (float x : v) {
      REQUIRE(std::isfinite(x));
      REQUIRE(std::fabs(x) <= bound * 1.01);
    }
    CHECK(*std::max_element(v.begin(), v.end()) > *std::min_element(v.begin(), v.end()));
  }
}

TEST_CASE("bare checkpoints without config.json scale and round-trip too", "[synthetic]") {
  // Each catalog component written as a bare .safetensors (no config, no class): what
  // open_model guesses from tensor names is scaled, and a synthesised config.json says it back.
  for (const std::string name :
       {"qwen-image", "flux1-dev", "sd35-large", "sdxl", "wan21-t2v-14b"}) {
    INFO(name);
    const Model small = scaled(catalog(name), 16);
    TempDir tmp;
    auto written = write_synthetic_model(small, tmp.file("src"));
    REQUIRE(written.is_ok());
    auto pipeline = open_model(written.value());
    REQUIRE(pipeline.is_ok());
    for (const auto& c : pipeline->components) {
      INFO(c.name);
      const std::string bare = tmp.file(c.name + ".safetensors");
      fs::copy_file(c.files.front(), bare);
      auto opened = open_model(bare);
      REQUIRE(opened.is_ok());
      REQUIRE(opened->components.front().config_json.empty());
      // Two blocks stay: UMT5 differs from T5 by name only from its second block on.
      ScaleDown o;
      o.factor = 2;
      o.min_blocks = 2;
      auto scaled_again = scale_down(opened.value(), o);
      REQUIRE(scaled_again.is_ok());
      const Model& s = scaled_again.value();
      auto again = write_synthetic_model(s, tmp.file(c.name + "-2"));
      INFO(again.status().to_string());
      REQUIRE(again.is_ok());
      auto back = open_model(again.value());
      INFO(back.status().to_string());
      REQUIRE(back.is_ok());
      REQUIRE(back->components.size() == 1);
      const Component& got = back->components.front();
      CHECK(got.role == s.components.front().role);
      check_arch_equal(got.arch, s.components.front().arch);
      CHECK(got.tensors.size() == s.components.front().tensors.size());
    }
  }
}

TEST_CASE("synthetic bytes are the same on every machine", "[synthetic]") {
  // FNV-1a of files written by this seed; a change here changes every synthetic run.
  const Model s = scaled(catalog("sdxl"), 64);
  TempDir tmp;
  REQUIRE(write_synthetic_model(s, tmp.file("a"), 5).is_ok());
  const auto hash = [](const std::vector<std::uint8_t>& bytes) {
    std::uint64_t h = 0xcbf29ce484222325ull;
    for (auto b : bytes) h = (h ^ b) * 0x100000001b3ull;
    return h;
  };
  const auto unet =
      dmem::test::read_file(tmp.file("a") + "/unet/diffusion_pytorch_model.safetensors");
  const auto te = dmem::test::read_file(tmp.file("a") + "/text_encoder/model.safetensors");
  CHECK(hash(unet) == 0x7b88e77850ed52faull);
  CHECK(hash(te) == 0x730f2c7bf631c596ull);
}
