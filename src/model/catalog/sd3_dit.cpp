// SD3Transformer2DModel (diffusers models/transformers/transformer_sd3.py, attention.py
// JointTransformerBlock), published stabilityai/stable-diffusion-3.5-large transformer/config.json.
// FORMATS.md §6.7.
#include <algorithm>
#include <vector>

#include "model/catalog/catalog_builder.hpp"
#include "model/catalog/catalog_parts.hpp"

namespace dmem::detail {

namespace {

struct Sd3Config {
  std::uint64_t layers, heads, head_dim, caption_dim, pos_embed_max;
  bool qk_norm;
  std::vector<std::uint64_t> dual_attention_layers;  // SD3.5-Medium uses 0..12; Large none
};

void build_sd3(TensorListBuilder& b, const Sd3Config& cfg) {
  constexpr std::uint64_t kIn = 16, kOut = 16, kPatch = 2, kJoint = 4096, kPooled = 2048;
  const std::uint64_t D = cfg.heads * cfg.head_dim;
  b.conv("pos_embed.proj", kIn, D, {kPatch, kPatch});
  // PatchEmbed registers pos_embed with persistent=True when pos_embed_max_size is set, so it
  // is part of the state dict (and of the checkpoint) although it is not a parameter.
  b.add("pos_embed.pos_embed", {1, cfg.pos_embed_max * cfg.pos_embed_max, D});
  two_layer_mlp(b, "time_text_embed.timestep_embedder", 256, D, D);
  two_layer_mlp(b, "time_text_embed.text_embedder", kPooled, D, D);
  b.linear("context_embedder", kJoint, cfg.caption_dim);
  for (std::uint64_t i = 0; i < cfg.layers; ++i) {
    const std::string blk = indexed("transformer_blocks", i);
    const bool last = i + 1 == cfg.layers;
    const bool dual = std::find(cfg.dual_attention_layers.begin(), cfg.dual_attention_layers.end(),
                                i) != cfg.dual_attention_layers.end();
    b.linear(join(blk, "norm1.linear"), D, (dual ? 9 : 6) * D);
    b.linear(join(blk, "norm1_context.linear"), D, (last ? 2 : 6) * D);
    AttentionShape attn;
    attn.qk_norm = cfg.qk_norm;
    attn.context_pre_only = last;
    joint_attention(b, join(blk, "attn"), D, cfg.heads, cfg.head_dim, attn);
    if (dual) {
      AttentionShape attn2;
      attn2.qk_norm = cfg.qk_norm;
      attn2.added = false;
      joint_attention(b, join(blk, "attn2"), D, cfg.heads, cfg.head_dim, attn2);
    }
    feed_forward(b, join(blk, "ff"), D, 4 * D);
    if (!last) feed_forward(b, join(blk, "ff_context"), D, 4 * D);
  }
  b.linear("norm_out.linear", D, 2 * D);
  b.linear("proj_out", D, kPatch * kPatch * kOut);
}

}  // namespace

Component sd35_large_transformer(DType dtype) {
  const Sd3Config cfg{38, 38, 64, 2432, 192, true, {}};
  const std::uint64_t D = cfg.heads * cfg.head_dim;
  TensorListBuilder b(dtype, 1227);
  build_sd3(b, cfg);

  Component c;
  c.name = "transformer";
  c.role = Role::denoiser;
  c.class_name = "SD3Transformer2DModel";
  c.arch.family = "sd3-dit";
  c.arch.hidden = static_cast<std::uint32_t>(D);
  c.arch.layers = static_cast<std::uint32_t>(cfg.layers);
  c.arch.heads = static_cast<std::uint32_t>(cfg.heads);
  c.arch.head_dim = static_cast<std::uint32_t>(cfg.head_dim);
  c.arch.ffn = static_cast<std::uint32_t>(4 * D);
  c.arch.patch = 2;
  c.arch.patch_t = 1;
  c.arch.in_channels = 16;
  c.arch.latent_channels = 16;
  c.arch.vae_scale = 8;
  c.arch.text_dim = 4096;
  c.arch.max_text_tokens = 333;  // 77 CLIP tokens + 256 T5 tokens (pipeline default)
  c.tensors = b.take();
  c.config_json = R"({
  "_class_name": "SD3Transformer2DModel",
  "attention_head_dim": 64,
  "caption_projection_dim": 2432,
  "dual_attention_layers": [],
  "in_channels": 16,
  "joint_attention_dim": 4096,
  "num_attention_heads": 38,
  "num_layers": 38,
  "out_channels": 16,
  "patch_size": 2,
  "pooled_projection_dim": 2048,
  "pos_embed_max_size": 192,
  "qk_norm": "rms_norm",
  "sample_size": 128
})";
  return c;
}

}  // namespace dmem::detail
