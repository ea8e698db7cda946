// open_model on every input kind: diffusers pipelines and component folders (variants, missing
// and pickle weights), single-file checkpoints split by prefix, plain and sharded safetensors,
// GGUF, catalog names and bad paths. Fixtures are written by the SDK's writers.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "dmem/catalog.hpp"
#include "dmem/checkpoint.hpp"
#include "dmem/model.hpp"
#include "dmem/module_tree.hpp"
#include "dmem/writer.hpp"
#include "format/diffusers.hpp"
#include "format/json_util.hpp"
#include "model/arch_from_config.hpp"
#include "support/test_support.hpp"

using namespace dmem;
using dmem::test::TempDir;
using dmem::test::write_file;
using nlohmann::json;
namespace fs = std::filesystem;

namespace {

struct Spec {
  std::string name;
  std::vector<std::uint64_t> shape;
};

std::uint64_t bytes_of(const Spec& s, DType dt) {
  std::uint64_t n = 1;
  for (auto d : s.shape) n *= d;
  return n * dtype_info(dt).block_bytes;
}

void write_st(const std::string& path, const std::vector<Spec>& specs, DType dt = DType::f16) {
  std::vector<std::vector<std::uint8_t>> bufs;
  bufs.reserve(specs.size());
  std::vector<TensorData> data;
  for (const auto& s : specs) {
    bufs.emplace_back(bytes_of(s, dt), std::uint8_t{0});
    data.push_back({s.name, dt, s.shape, bufs.back().data(), bufs.back().size()});
  }
  const Status st = write_safetensors(path, data);
  INFO(st.to_string());
  REQUIRE(st.is_ok());
}

// `shards` shards named BASE-0000i-of-0000n.safetensors plus INDEX_NAME, round-robin split.
void write_sharded(const fs::path& folder, const std::string& base, const std::string& index_name,
                   const std::vector<Spec>& specs, std::size_t shards) {
  json index;
  std::uint64_t total = 0;
  std::vector<std::vector<Spec>> parts(shards);
  for (std::size_t i = 0; i < specs.size(); ++i) parts[i % shards].push_back(specs[i]);
  for (std::size_t s = 0; s < shards; ++s) {
    char name[64];
    std::snprintf(name, sizeof name, "-%05zu-of-%05zu.safetensors", s + 1, shards);
    const std::string file = base + name;
    write_st((folder / file).string(), parts[s]);
    for (const auto& t : parts[s]) {
      index["weight_map"][t.name] = file;
      total += bytes_of(t, DType::f16);
    }
  }
  index["metadata"]["total_size"] = total;
  write_file((folder / index_name).string(), index.dump(2) + "\n");
}

fs::path make_dir(const fs::path& p) {
  fs::create_directories(p);
  return p;
}

const std::vector<Spec> kFluxDiffusers = {
    {"x_embedder.weight", {8, 4}},
    {"context_embedder.weight", {8, 6}},
    {"transformer_blocks.0.attn.to_q.weight", {8, 8}},
    {"transformer_blocks.0.attn.norm_q.weight", {4}},
    {"transformer_blocks.1.attn.to_q.weight", {8, 8}},
    {"single_transformer_blocks.0.proj_mlp.weight", {16, 8}},
    {"single_transformer_blocks.1.proj_mlp.weight", {16, 8}},
    {"single_transformer_blocks.2.proj_mlp.weight", {16, 8}},
    {"proj_out.weight", {4, 8}},
};

const std::vector<Spec> kClip = {
    {"text_model.embeddings.token_embedding.weight", {10, 8}},
    {"text_model.embeddings.position_embedding.weight", {77, 8}},
    {"text_model.encoder.layers.0.self_attn.q_proj.weight", {8, 8}},
    {"text_model.encoder.layers.0.mlp.fc1.weight", {16, 8}},
    {"text_model.final_layer_norm.weight", {8}},
};

const std::vector<Spec> kVaeDiffusers = {
    {"encoder.conv_in.weight", {4, 3, 3, 3}},
    {"encoder.down_blocks.0.resnets.0.conv1.weight", {4, 4, 3, 3}},
    {"decoder.conv_in.weight", {8, 16, 3, 3}},
    {"decoder.up_blocks.0.resnets.0.conv1.weight", {8, 8, 3, 3}},
};

constexpr const char* kFluxTransformerConfig = R"({
  "_class_name": "FluxTransformer2DModel", "_diffusers_version": "0.30.0",
  "num_layers": 2, "num_single_layers": 3, "num_attention_heads": 2, "attention_head_dim": 4,
  "in_channels": 4, "joint_attention_dim": 6, "patch_size": 1, "guidance_embeds": true
})";

constexpr const char* kClipConfig = R"({
  "architectures": ["CLIPTextModel"], "hidden_size": 8, "num_hidden_layers": 1,
  "num_attention_heads": 2, "intermediate_size": 16, "vocab_size": 10,
  "max_position_embeddings": 77
})";

constexpr const char* kVaeConfig = R"({
  "_class_name": "AutoencoderKL", "block_out_channels": [4, 8, 8, 8], "latent_channels": 16,
  "in_channels": 3
})";

constexpr const char* kFluxIndex = R"({
  "_class_name": "FluxPipeline", "_diffusers_version": "0.30.0",
  "feature_extractor": [null, null], "image_encoder": [null, null],
  "scheduler": ["diffusers", "FlowMatchEulerDiscreteScheduler"],
  "text_encoder": ["transformers", "CLIPTextModel"],
  "tokenizer": ["transformers", "CLIPTokenizer"],
  "transformer": ["diffusers", "FluxTransformer2DModel"],
  "vae": ["diffusers", "AutoencoderKL"],
  "force_zeros_for_empty_prompt": true
})";

// A FLUX-like pipeline: sharded transformer, transformers-named text encoder, VAE, and the
// weightless scheduler / tokenizer folders.
void write_flux_pipeline(const fs::path& root) {
  write_file((root / "model_index.json").string(), kFluxIndex);
  const fs::path tr = make_dir(root / "transformer");
  write_file((tr / "config.json").string(), kFluxTransformerConfig);
  write_sharded(tr, "diffusion_pytorch_model", "diffusion_pytorch_model.safetensors.index.json",
                kFluxDiffusers, 3);
  const fs::path te = make_dir(root / "text_encoder");
  write_file((te / "config.json").string(), kClipConfig);
  write_st((te / "model.safetensors").string(), kClip);
  const fs::path vae = make_dir(root / "vae");
  write_file((vae / "config.json").string(), kVaeConfig);
  write_st((vae / "diffusion_pytorch_model.safetensors").string(), kVaeDiffusers);
  write_file((make_dir(root / "scheduler") / "scheduler_config.json").string(),
             R"({"_class_name": "FlowMatchEulerDiscreteScheduler"})");
  write_file((make_dir(root / "tokenizer") / "vocab.json").string(), "{}");
}

std::vector<std::string> names_of(const Model& m) {
  std::vector<std::string> out;
  for (const auto& c : m.components) out.push_back(c.name);
  return out;
}

bool has_tensor(const Component& c, const std::string& name) {
  return std::any_of(c.tensors.begin(), c.tensors.end(),
                     [&](const TensorInfo& t) { return t.name == name; });
}

// Every error names the file or folder it is about, in file() and in the printed line.
// The status is copied to `out` for further checks.
void expect_error(const Result<Model>& r, Errc code, const std::string& file,
                  Status* out = nullptr) {
  REQUIRE_FALSE(r.has_value());
  const Status& st = r.status();
  INFO(st.to_string());
  CHECK(st.code() == code);
  CHECK(st.file() == file);
  CHECK(st.to_string().find(file) != std::string::npos);
  if (out != nullptr) *out = st;
}

// A component folder holding exactly these files (tiny CLIP tensors), plus config.json.
fs::path component_folder(const TempDir& dir, const std::string& name,
                          const std::vector<std::string>& weight_files) {
  const fs::path folder = make_dir(dir.path() / name);
  write_file((folder / "config.json").string(), kClipConfig);
  for (const auto& f : weight_files) write_st((folder / f).string(), kClip);
  return folder;
}

}  // namespace

TEST_CASE("open_model reads a diffusers pipeline folder", "[open]") {
  TempDir dir;
  write_flux_pipeline(dir.path());
  auto r = open_model(dir.path().string());
  INFO((r ? std::string() : r.status().to_string()));
  REQUIRE(r.has_value());
  const Model& m = *r;
  CHECK(m.source == "diffusers");
  CHECK(m.name == dir.path().string());
  CHECK(m.pipeline_class == "FluxPipeline");
  // Scheduler, tokenizer and [null, null] entries are skipped; denoiser, encoders, VAE order.
  REQUIRE(names_of(m) == std::vector<std::string>{"transformer", "text_encoder", "vae"});

  const Component& tr = m.components[0];
  CHECK(tr.role == Role::denoiser);
  CHECK(tr.class_name == "FluxTransformer2DModel");
  CHECK(tr.arch.family == "flux-dit");
  CHECK(tr.arch.layers == 5);
  CHECK(tr.arch.heads == 2);
  CHECK(tr.arch.head_dim == 4);
  CHECK(tr.arch.hidden == 8);
  CHECK(tr.arch.in_channels == 4);
  CHECK(tr.arch.text_dim == 6);
  CHECK(tr.arch.patch == 2);  // FLUX packs 2x2 latents per token
  CHECK(tr.config_json.find("FluxTransformer2DModel") != std::string::npos);
  REQUIRE(tr.files.size() == 3);
  CHECK(tr.tensors.size() == kFluxDiffusers.size());
  std::set<std::uint32_t> used;
  for (const auto& t : tr.tensors) {
    REQUIRE(t.file < tr.files.size());
    used.insert(t.file);
  }
  CHECK(used.size() == 3);
  CHECK(fs::path(tr.files[0]).filename() == "diffusion_pytorch_model-00001-of-00003.safetensors");

  const Component& te = m.components[1];
  CHECK(te.role == Role::text_encoder);
  CHECK(te.class_name == "CLIPTextModel");
  CHECK(te.arch.family == "clip");
  CHECK(te.arch.hidden == 8);
  CHECK(te.arch.layers == 1);
  CHECK(te.arch.ffn == 16);
  CHECK(te.arch.vocab == 10);
  CHECK(te.arch.max_text_tokens == 77);
  REQUIRE(te.files.size() == 1);
  CHECK(fs::path(te.files[0]).filename() == "model.safetensors");

  const Component& vae = m.components[2];
  CHECK(vae.role == Role::vae);
  CHECK(vae.arch.family == "vae-kl");
  CHECK(vae.arch.vae_scale == 8);
  CHECK(vae.arch.latent_channels == 16);
  CHECK(vae.arch.in_channels == 3);

  // The module tree sees the blocks of the sharded transformer.
  const ComponentSummary s = summarize(tr);
  CHECK(s.blocks.size() == 5);
}

TEST_CASE("open_model reports pipeline components without weights", "[open]") {
  TempDir dir;
  write_flux_pipeline(dir.path());

  SECTION("a listed component whose folder is missing") {
    fs::remove_all(dir.path() / "vae");
    Status st;
    expect_error(open_model(dir.path().string()), Errc::not_found, (dir.path() / "vae").string(),
                 &st);
    CHECK(st.message().find("'vae'") != std::string::npos);
  }
  SECTION("a component folder without weights names the files looked for") {
    fs::remove(dir.path() / "vae" / "diffusion_pytorch_model.safetensors");
    Status st;
    expect_error(open_model(dir.path().string()), Errc::not_found, (dir.path() / "vae").string(),
                 &st);
    CHECK(st.message().find("diffusion_pytorch_model[.VARIANT].safetensors") != std::string::npos);
    CHECK(st.message().find("model[.VARIANT].safetensors.index.json") != std::string::npos);
  }
  SECTION("pickle weights only") {
    fs::remove(dir.path() / "vae" / "diffusion_pytorch_model.safetensors");
    write_file((dir.path() / "vae" / "diffusion_pytorch_model.bin").string(), "PK");
    Status st;
    expect_error(open_model(dir.path().string()), Errc::unsupported, (dir.path() / "vae").string(),
                 &st);
    CHECK(st.message().find("pickle checkpoints are not read; convert to safetensors") !=
          std::string::npos);
  }
  SECTION("a malformed model_index.json") {
    write_file((dir.path() / "model_index.json").string(), "{\"vae\": [");
    Status st;
    expect_error(open_model(dir.path().string()), Errc::format_error,
                 (dir.path() / "model_index.json").string(), &st);
    CHECK(st.has_offset());
  }
  SECTION("a broken shard index surfaces the sharded reader's error") {
    write_file(
        (dir.path() / "transformer" / "diffusion_pytorch_model.safetensors.index.json").string(),
        "[]");
    auto r = open_model(dir.path().string());
    REQUIRE_FALSE(r.has_value());
    CHECK(r.status().file().find("transformer") != std::string::npos);
  }
}

TEST_CASE("open_model chooses among weight variants", "[open]") {
  TempDir dir;

  SECTION("the only variant present is picked") {
    const fs::path f = component_folder(dir, "text_encoder", {"model.fp16.safetensors"});
    auto r = open_model(f.string());
    REQUIRE(r.has_value());
    REQUIRE(r->components.size() == 1);
    CHECK(fs::path(r->components[0].files.at(0)).filename() == "model.fp16.safetensors");
  }
  SECTION("default weights win over a variant") {
    const fs::path f = component_folder(
        dir, "unet",
        {"diffusion_pytorch_model.fp16.safetensors", "diffusion_pytorch_model.safetensors"});
    auto r = open_model(f.string());
    REQUIRE(r.has_value());
    CHECK(fs::path(r->components[0].files.at(0)).filename() ==
          "diffusion_pytorch_model.safetensors");
  }
  SECTION("two variants and no default is an error listing them") {
    const fs::path f = component_folder(
        dir, "unet",
        {"diffusion_pytorch_model.fp16.safetensors", "diffusion_pytorch_model.bf16.safetensors"});
    Status st;
    expect_error(open_model(f.string()), Errc::unsupported, f.string(), &st);
    CHECK(st.message().find("bf16") != std::string::npos);
    CHECK(st.message().find("fp16") != std::string::npos);
    CHECK(st.rule() == "diffusers.variant");
  }
  SECTION("a sharded variant named as diffusers' _add_variant names it") {
    const fs::path f = make_dir(dir.path() / "transformer");
    write_file((f / "config.json").string(), kFluxTransformerConfig);
    write_sharded(f, "diffusion_pytorch_model.fp16",
                  "diffusion_pytorch_model.safetensors.index.fp16.json", kFluxDiffusers, 2);
    auto r = open_model(f.string());
    INFO((r ? std::string() : r.status().to_string()));
    REQUIRE(r.has_value());
    CHECK(r->components[0].files.size() == 2);
    CHECK(r->components[0].arch.family == "flux-dit");
  }
}

TEST_CASE("weight file names are parsed with their variant", "[open]") {
  detail::WeightName w;
  REQUIRE(detail::parse_weight_name("diffusion_pytorch_model.safetensors", w));
  CHECK((w.diffusers && !w.index && w.variant.empty()));
  REQUIRE(detail::parse_weight_name("model.fp16.safetensors.index.json", w));
  CHECK((!w.diffusers && w.index && w.variant == "fp16"));
  REQUIRE(detail::parse_weight_name("diffusion_pytorch_model.safetensors.index.bf16.json", w));
  CHECK((w.diffusers && w.index && w.variant == "bf16"));
  // Shards are reached through their index, never chosen on their own.
  CHECK_FALSE(detail::parse_weight_name("diffusion_pytorch_model-00001-of-00002.safetensors", w));
  CHECK_FALSE(
      detail::parse_weight_name("diffusion_pytorch_model.fp16-00001-of-00002.safetensors", w));
  CHECK_FALSE(detail::parse_weight_name("flux1-dev.safetensors", w));
  CHECK_FALSE(detail::parse_weight_name("model.safetensors.index.json.bak", w));
}

TEST_CASE("open_model reads a component folder", "[open]") {
  TempDir dir;
  const fs::path f = make_dir(dir.path() / "transformer");
  write_file((f / "config.json").string(), R"({"_class_name": "QwenImageTransformer2DModel",
    "num_layers": 2, "num_attention_heads": 2, "attention_head_dim": 4, "patch_size": 2,
    "in_channels": 4, "out_channels": 16, "joint_attention_dim": 6})");
  write_st((f / "diffusion_pytorch_model.safetensors").string(),
           {{"img_in.weight", {8, 4}},
            {"txt_in.weight", {8, 6}},
            {"transformer_blocks.0.img_mod.1.weight", {48, 8}},
            {"transformer_blocks.1.img_mod.1.weight", {48, 8}}});

  SECTION("the folder") {
    auto r = open_model((f.string() + "/"));
    INFO((r ? std::string() : r.status().to_string()));
    REQUIRE(r.has_value());
    CHECK(r->source == "diffusers");
    REQUIRE(r->components.size() == 1);
    const Component& c = r->components[0];
    CHECK(c.name == "transformer");
    CHECK(c.role == Role::denoiser);
    CHECK(c.arch.family == "qwen-image-dit");
    CHECK(c.arch.layers == 2);
    CHECK(c.arch.hidden == 8);
    CHECK(c.arch.patch == 2);
    CHECK(c.arch.latent_channels == 16);
    CHECK(c.arch.text_dim == 6);
    CHECK(!c.config_json.empty());
  }
  SECTION("its weights file opened directly still reads config.json") {
    auto r = open_model((f / "diffusion_pytorch_model.safetensors").string());
    REQUIRE(r.has_value());
    CHECK(r->source == "safetensors");
    REQUIRE(r->components.size() == 1);
    CHECK(r->components[0].name == "transformer");
    CHECK(r->components[0].class_name == "QwenImageTransformer2DModel");
  }
  SECTION("a malformed config.json is named") {
    write_file((f / "config.json").string(), "{\"_class_name\": 1,}");
    expect_error(open_model(f.string()), Errc::format_error, (f / "config.json").string());
  }
  SECTION("a folder with nothing dmem reads") {
    const fs::path empty = make_dir(dir.path() / "empty");
    write_file((empty / "README.md").string(), "hi");
    expect_error(open_model(empty.string()), Errc::unsupported, empty.string());
  }
}

TEST_CASE("open_model splits a FLUX single-file checkpoint", "[open]") {
  TempDir dir;
  const std::string path = dir.file("flux1-dev-fp8.safetensors");
  write_st(
      path,
      {
          {"model.diffusion_model.img_in.weight", {8, 4}},
          {"model.diffusion_model.txt_in.weight", {8, 6}},
          {"model.diffusion_model.double_blocks.0.img_attn.qkv.weight", {24, 8}},
          {"model.diffusion_model.double_blocks.0.img_attn.norm.query_norm.scale", {4}},
          {"model.diffusion_model.double_blocks.1.img_attn.qkv.weight", {24, 8}},
          {"model.diffusion_model.single_blocks.0.linear1.weight", {40, 8}},
          {"vae.encoder.conv_in.weight", {4, 3, 3, 3}},
          {"vae.encoder.down.0.block.0.conv1.weight", {4, 4, 3, 3}},
          {"vae.encoder.down.1.block.0.conv1.weight", {4, 4, 3, 3}},
          {"vae.decoder.conv_in.weight", {8, 16, 3, 3}},
          {"text_encoders.clip_l.transformer.text_model.embeddings.token_embedding.weight",
           {10, 8}},
          {"text_encoders.clip_l.transformer.text_model.encoder.layers.0.mlp.fc1.weight", {16, 8}},
          {"text_encoders.t5xxl.transformer.shared.weight", {12, 8}},
          {"text_encoders.t5xxl.transformer.encoder.block.0.layer.0.SelfAttention.q.weight",
           {8, 8}},
          {"text_encoders.t5xxl.transformer.encoder.block.0.layer.0.SelfAttention."
           "relative_attention_bias.weight",
           {32, 2}},
          {"model_ema.decay", {1}},
      });
  auto r = open_model(path);
  INFO((r ? std::string() : r.status().to_string()));
  REQUIRE(r.has_value());
  const Model& m = *r;
  CHECK(m.source == "single-file");
  REQUIRE(names_of(m) == std::vector<std::string>{"transformer", "text_encoder", "text_encoder_2",
                                                  "vae", "other"});

  const Component& tr = m.components[0];
  CHECK(tr.role == Role::denoiser);
  CHECK(tr.arch.family == "flux-dit");
  CHECK(tr.arch.layers == 3);
  CHECK(tr.arch.hidden == 8);
  CHECK(tr.arch.head_dim == 4);
  CHECK(tr.arch.heads == 2);
  CHECK(tr.arch.text_dim == 6);
  CHECK(tr.tensors.size() == 6);
  CHECK(has_tensor(tr, "double_blocks.0.img_attn.qkv.weight"));  // prefix stripped, name kept
  REQUIRE(tr.files.size() == 1);
  CHECK(tr.files[0] == path);

  CHECK(m.components[1].role == Role::text_encoder);
  CHECK(m.components[1].arch.family == "clip");
  CHECK(has_tensor(m.components[1], "text_model.embeddings.token_embedding.weight"));
  // FLUX has no CLIP-G, so T5 is the second text encoder, as in FluxPipeline.
  CHECK(m.components[2].arch.family == "t5");
  CHECK(m.components[2].arch.heads == 2);
  // No guidance_in: FLUX.1 [schnell], whose pipeline gives T5 256 tokens.
  CHECK(tr.arch.max_text_tokens == 256);
  CHECK(m.components[2].arch.max_text_tokens == 256);
  CHECK(has_tensor(m.components[2], "shared.weight"));

  const Component& vae = m.components[3];
  CHECK(vae.role == Role::vae);
  CHECK(vae.arch.family == "vae-kl");
  CHECK(vae.arch.latent_channels == 16);
  CHECK(vae.arch.vae_scale == 2);  // two levels in this toy VAE

  CHECK(m.components[4].role == Role::other);
  CHECK(has_tensor(m.components[4], "model_ema.decay"));
}

TEST_CASE("open_model splits an SDXL single-file checkpoint", "[open]") {
  TempDir dir;
  const std::string path = dir.file("sd_xl_base_1.0.safetensors");
  write_st(
      path,
      {
          {"model.diffusion_model.input_blocks.0.0.weight", {8, 4, 3, 3}},
          {"model.diffusion_model.input_blocks.4.1.transformer_blocks.0.attn1.to_q.weight", {8, 8}},
          {"model.diffusion_model.input_blocks.4.1.transformer_blocks.0.attn2.to_k.weight",
           {8, 12}},
          {"model.diffusion_model.middle_block.0.in_layers.2.weight", {8, 8, 3, 3}},
          {"model.diffusion_model.label_emb.0.0.weight", {8, 16}},
          {"first_stage_model.encoder.conv_in.weight", {4, 3, 3, 3}},
          {"first_stage_model.encoder.down.0.block.0.conv1.weight", {4, 4, 3, 3}},
          {"first_stage_model.decoder.conv_in.weight", {8, 4, 3, 3}},
          {"conditioner.embedders.0.transformer.text_model.embeddings.token_embedding.weight",
           {10, 8}},
          {"conditioner.embedders.0.transformer.text_model.encoder.layers.0.mlp.fc1.weight",
           {16, 8}},
          {"conditioner.embedders.1.model.token_embedding.weight", {10, 12}},
          {"conditioner.embedders.1.model.transformer.resblocks.0.attn.in_proj_weight", {36, 12}},
          {"conditioner.embedders.1.model.transformer.resblocks.1.attn.in_proj_weight", {36, 12}},
      });
  auto r = open_model(path);
  INFO((r ? std::string() : r.status().to_string()));
  REQUIRE(r.has_value());
  const Model& m = *r;
  CHECK(m.source == "single-file");
  // Nothing outside the prefixes: no "other" component.
  REQUIRE(names_of(m) == std::vector<std::string>{"unet", "text_encoder", "text_encoder_2", "vae"});
  const Component& unet = m.components[0];
  CHECK(unet.role == Role::denoiser);
  CHECK(unet.arch.family == "sdxl-unet");
  CHECK(unet.arch.layers == 1);
  CHECK(unet.arch.text_dim == 12);
  CHECK(has_tensor(unet, "input_blocks.0.0.weight"));
  CHECK(m.components[1].arch.family == "clip");
  CHECK(m.components[2].arch.family == "clip");
  CHECK(m.components[2].arch.layers == 2);
  CHECK(m.components[2].arch.hidden == 12);
  CHECK(has_tensor(m.components[2], "token_embedding.weight"));
  CHECK(m.components[3].arch.family == "vae-kl");
  CHECK(m.components[3].arch.latent_channels == 4);
}

TEST_CASE("open_model names T5 text_encoder_3 next to CLIP-G (SD3 single file)", "[open]") {
  TempDir dir;
  const std::string path = dir.file("sd3.5_large.safetensors");
  write_st(
      path,
      {
          {"model.diffusion_model.joint_blocks.0.x_block.attn.qkv.weight", {24, 8}},
          {"model.diffusion_model.x_embedder.proj.weight", {8, 16, 2, 2}},
          {"text_encoders.clip_l.transformer.text_model.encoder.layers.0.mlp.fc1.weight", {16, 8}},
          {"text_encoders.clip_g.transformer.text_model.encoder.layers.0.mlp.fc1.weight", {16, 8}},
          {"text_encoders.t5xxl.transformer.encoder.block.0.layer.0.SelfAttention.q.weight",
           {8, 8}},
          {"text_encoders.t5xxl.transformer.shared.weight", {12, 8}},
      });
  auto r = open_model(path);
  REQUIRE(r.has_value());
  REQUIRE(names_of(*r) == std::vector<std::string>{"transformer", "text_encoder", "text_encoder_2",
                                                   "text_encoder_3"});
  CHECK(r->components[0].arch.family == "sd3-dit");
  CHECK(r->components[0].arch.patch == 2);
  CHECK(r->components[3].arch.family == "t5");
  CHECK(r->components[0].arch.max_text_tokens == 333);  // 77 CLIP + 256 T5
  CHECK(r->components[3].arch.max_text_tokens == 256);
}

TEST_CASE("open_model splits a sharded single-file checkpoint", "[open]") {
  TempDir dir;
  write_sharded(dir.path(), "flux1-dev", "flux1-dev.safetensors.index.json",
                {{"model.diffusion_model.double_blocks.0.img_attn.qkv.weight", {24, 8}},
                 {"model.diffusion_model.single_blocks.0.linear1.weight", {40, 8}},
                 {"vae.encoder.conv_in.weight", {4, 3, 3, 3}},
                 {"vae.decoder.conv_in.weight", {8, 16, 3, 3}}},
                2);
  auto r = open_model(dir.file("flux1-dev.safetensors.index.json"));
  INFO((r ? std::string() : r.status().to_string()));
  REQUIRE(r.has_value());
  REQUIRE(names_of(*r) == std::vector<std::string>{"transformer", "vae"});
  for (const auto& c : r->components) {
    // Each component keeps only the shards its tensors live in (here both).
    CHECK(c.files.size() == 2);
    for (const auto& t : c.tensors) CHECK(t.file < c.files.size());
  }
}

TEST_CASE("open_model reads a plain checkpoint as one component", "[open]") {
  TempDir dir;
  SECTION("original Wan names") {
    const std::string path = dir.file("wan2.1_t2v_14B_bf16.safetensors");
    write_st(path, {{"patch_embedding.weight", {8, 4, 1, 2, 2}},
                    {"text_embedding.0.weight", {8, 6}},
                    {"blocks.0.self_attn.q.weight", {8, 8}},
                    {"blocks.1.self_attn.q.weight", {8, 8}},
                    {"head.head.weight", {16, 8}}});
    auto r = open_model(path);
    REQUIRE(r.has_value());
    CHECK(r->source == "safetensors");
    REQUIRE(r->components.size() == 1);
    const Component& c = r->components[0];
    CHECK(c.name == "wan2.1_t2v_14B_bf16");
    CHECK(c.role == Role::denoiser);
    CHECK(c.arch.family == "wan-dit");
    CHECK(c.arch.layers == 2);
    CHECK(c.arch.patch == 2);
    CHECK(c.arch.patch_t == 1);
    CHECK(c.arch.text_dim == 6);
    CHECK(c.tensors.size() == 5);
  }
  SECTION("an unknown layout is role other") {
    const std::string path = dir.file("lora.safetensors");
    write_st(path, {{"foo.lora_A.weight", {2, 8}}});
    auto r = open_model(path);
    REQUIRE(r.has_value());
    CHECK(r->components.at(0).role == Role::other);
    CHECK(r->components.at(0).arch.family.empty());
  }
}

TEST_CASE("open_model reads a GGUF file", "[open]") {
  TempDir dir;
  const std::string path = dir.file("flux1-dev-Q8_0.gguf");
  std::vector<std::uint8_t> buf(1024, 0);
  std::vector<TensorData> tensors = {
      {"img_in.weight", DType::f32, {8, 4}, buf.data(), 8 * 4 * 4},
      {"double_blocks.0.img_attn.qkv.weight", DType::f32, {24, 8}, buf.data(), 24 * 8 * 4},
      {"single_blocks.0.linear1.weight", DType::f32, {16, 8}, buf.data(), 16 * 8 * 4},
  };
  GgufKv arch;
  arch.key = "general.architecture";
  arch.value.type = GgufType::string;
  arch.value.value = std::string("flux");
  const std::vector<GgufKv> md = {arch};
  const Status written = write_gguf(path, tensors, md);
  INFO(written.to_string());
  REQUIRE(written.is_ok());

  auto r = open_model(path);
  INFO((r ? std::string() : r.status().to_string()));
  REQUIRE(r.has_value());
  CHECK(r->source == "gguf");
  REQUIRE(r->components.size() == 1);
  const Component& c = r->components[0];
  CHECK(c.name == "flux1-dev-Q8_0");
  CHECK(c.role == Role::denoiser);
  CHECK(c.arch.family == "flux-dit");
  CHECK(c.arch.layers == 2);
  CHECK(c.tensors.size() == 3);
  REQUIRE(c.files.size() == 1);
  for (const auto& t : c.tensors) CHECK(t.file == 0);
}

TEST_CASE("open_model resolves catalog names and rejects unknown inputs", "[open]") {
  SECTION("a catalog name") {
    auto r = open_model("qwen-image");
    REQUIRE(r.has_value());
    CHECK(r->source == "catalog");
    CHECK(r->find("transformer") != nullptr);
  }
  SECTION("an unknown name lists the catalog") {
    Status st;
    expect_error(open_model("no-such-model"), Errc::not_found, "no-such-model", &st);
    CHECK(st.hint().find("qwen-image") != std::string::npos);
    CHECK(st.hint().find("dmem models") != std::string::npos);
  }
  SECTION("an empty name") {
    auto r = open_model("");
    REQUIRE_FALSE(r.has_value());
    CHECK(r.status().code() == Errc::invalid_argument);
  }
  TempDir dir;
  SECTION("a file of another kind") {
    const std::string path = dir.file("notes.txt");
    write_file(path, "hello");
    Status st;
    expect_error(open_model(path), Errc::unsupported, path, &st);
    CHECK(st.hint().find(".gguf") != std::string::npos);
  }
  SECTION("a pickle file") {
    const std::string path = dir.file("v1-5-pruned.ckpt");
    write_file(path, "PK");
    Status st;
    expect_error(open_model(path), Errc::unsupported, path, &st);
    CHECK(st.message().find("pickle") != std::string::npos);
  }
  SECTION("a corrupt safetensors file surfaces the reader's error") {
    const std::string path = dir.file("broken.safetensors");
    write_file(path, "xx");
    auto r = open_model(path);
    REQUIRE_FALSE(r.has_value());
    CHECK(r.status().file() == path);
  }
}

// The catalog's generators and the inference from real config.json keys / tensor names must
// agree: a downloaded pipeline plans like its built-in twin. The T5 prompt length is a
// pipeline fact (open_model aligns it with the denoiser), so it is left out here.
TEST_CASE("config.json and tensor names reproduce the catalog's ArchInfo", "[open]") {
  for (const auto& entry : catalog_entries()) {
    auto model = catalog_model(entry.name);
    REQUIRE(model.has_value());
    for (const Component& ref : model->components) {
      json config;
      detail::JsonError err;
      REQUIRE(detail::parse_json_strict(ref.config_json, config, err));
      Component from_config;
      from_config.name = ref.name;
      from_config.class_name = ref.class_name;
      from_config.tensors = ref.tensors;
      detail::complete_component(from_config, &config, true);
      // Original-format files have no class and no config: names and shapes only.
      Component from_tensors;
      from_tensors.name = ref.name;
      from_tensors.role = ref.role;
      from_tensors.tensors = ref.tensors;
      detail::complete_component(from_tensors, nullptr, false);

      for (const Component* c : {&from_config, &from_tensors}) {
        INFO(entry.name << " / " << ref.name << (c == &from_config ? " (config)" : " (tensors)"));
        const ArchInfo& a = ref.arch;
        const ArchInfo& b = c->arch;
        CHECK(c->role == ref.role);
        CHECK(b.family == a.family);
        CHECK(b.hidden == a.hidden);
        CHECK(b.layers == a.layers);
        CHECK(b.heads == a.heads);
        CHECK(b.head_dim == a.head_dim);
        CHECK(b.ffn == a.ffn);
        CHECK(b.patch == a.patch);
        CHECK(b.patch_t == a.patch_t);
        CHECK(b.in_channels == a.in_channels);
        CHECK(b.latent_channels == a.latent_channels);
        CHECK(b.vae_scale == a.vae_scale);
        CHECK(b.vae_scale_t == a.vae_scale_t);
        CHECK(b.text_dim == a.text_dim);
        CHECK(b.vocab == a.vocab);
        if (a.family != "t5") CHECK(b.max_text_tokens == a.max_text_tokens);
      }
    }
  }
}

TEST_CASE("open_model ignores config keys of the wrong type", "[open]") {
  TempDir dir;
  const fs::path f = make_dir(dir.path() / "unet");
  write_file((f / "config.json").string(), R"({"_class_name": "UNet2DConditionModel",
    "block_out_channels": [0, "x"], "attention_head_dim": -1, "down_block_types": 5,
    "num_layers": "many", "patch_size": [1, "x", 2], "in_channels": 1e30,
    "transformer_layers_per_block": [4294967295], "layers_per_block": 4294967295})");
  write_st((f / "diffusion_pytorch_model.safetensors").string(),
           {{"conv_in.weight", {8, 4, 3, 3}}});
  auto r = open_model(f.string());
  INFO((r ? std::string() : r.status().to_string()));
  REQUIRE(r.has_value());
  const Component& c = r->components.at(0);
  CHECK(c.role == Role::denoiser);
  CHECK(c.arch.family.empty());
  CHECK(c.arch.in_channels == 0);
  CHECK(c.arch.layers == 0);

  write_file((f / "config.json").string(), R"({"_class_name": "AutoencoderKL",
    "block_out_channels": [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
      0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0], "temperal_downsample": "yes", "z_dim": -4})");
  r = open_model(f.string());
  REQUIRE(r.has_value());
  CHECK(r->components.at(0).role == Role::vae);
  CHECK(r->components.at(0).arch.latent_channels == 0);
}
