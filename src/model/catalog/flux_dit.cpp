// FluxTransformer2DModel (diffusers models/transformers/transformer_flux.py), published
// black-forest-labs/FLUX.1-{dev,schnell} transformer/config.json. FORMATS.md §6.4.
#include "model/catalog/catalog_builder.hpp"
#include "model/catalog/catalog_parts.hpp"

namespace dmem::detail {

Component flux_transformer(bool guidance_embeds, std::uint32_t max_text_tokens, DType dtype) {
  constexpr std::uint64_t kDouble = 19, kSingle = 38, kHeads = 24, kHeadDim = 128;
  constexpr std::uint64_t kJoint = 4096, kPooled = 768, kIn = 64, kPatch = 1;
  constexpr std::uint64_t D = kHeads * kHeadDim;

  TensorListBuilder b(dtype, 1160);
  two_layer_mlp(b, "time_text_embed.timestep_embedder", 256, D, D);
  if (guidance_embeds) two_layer_mlp(b, "time_text_embed.guidance_embedder", 256, D, D);
  two_layer_mlp(b, "time_text_embed.text_embedder", kPooled, D, D);
  b.linear("context_embedder", kJoint, D);
  b.linear("x_embedder", kIn, D);
  for (std::uint64_t i = 0; i < kDouble; ++i) {
    const std::string blk = indexed("transformer_blocks", i);
    b.linear(join(blk, "norm1.linear"), D, 6 * D);
    b.linear(join(blk, "norm1_context.linear"), D, 6 * D);
    joint_attention(b, join(blk, "attn"), D, kHeads, kHeadDim, {});
    feed_forward(b, join(blk, "ff"), D, 4 * D);
    feed_forward(b, join(blk, "ff_context"), D, 4 * D);
  }
  for (std::uint64_t i = 0; i < kSingle; ++i) {
    const std::string blk = indexed("single_transformer_blocks", i);
    b.linear(join(blk, "norm.linear"), D, 3 * D);
    b.linear(join(blk, "proj_mlp"), D, 4 * D);
    b.linear(join(blk, "proj_out"), D + 4 * D, D);  // input is concat(attention, mlp)
    AttentionShape single;
    single.added = false;
    single.pre_only = true;
    joint_attention(b, join(blk, "attn"), D, kHeads, kHeadDim, single);
  }
  b.linear("norm_out.linear", D, 2 * D);
  b.linear("proj_out", D, kPatch * kPatch * kIn);

  Component c;
  c.name = "transformer";
  c.role = Role::denoiser;
  c.class_name = "FluxTransformer2DModel";
  c.arch.family = "flux-dit";
  c.arch.hidden = static_cast<std::uint32_t>(D);
  c.arch.layers = kDouble + kSingle;
  c.arch.heads = kHeads;
  c.arch.head_dim = kHeadDim;
  c.arch.ffn = static_cast<std::uint32_t>(4 * D);
  c.arch.patch = 2;  // the pipeline packs 2x2 latent pixels into one 64-channel token
  c.arch.patch_t = 1;
  c.arch.in_channels = kIn;
  c.arch.latent_channels = 16;
  c.arch.vae_scale = 8;
  c.arch.text_dim = kJoint;
  c.arch.max_text_tokens = max_text_tokens;
  c.tensors = b.take();
  c.config_json = fill_template(R"({
  "_class_name": "FluxTransformer2DModel",
  "attention_head_dim": 128,
  "axes_dims_rope": [16, 56, 56],
  "guidance_embeds": {},
  "in_channels": 64,
  "joint_attention_dim": 4096,
  "num_attention_heads": 24,
  "num_layers": 19,
  "num_single_layers": 38,
  "patch_size": 1,
  "pooled_projection_dim": 768
})",
                                {guidance_embeds ? "true" : "false"});
  return c;
}

}  // namespace dmem::detail
