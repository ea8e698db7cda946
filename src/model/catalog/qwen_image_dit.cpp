// QwenImageTransformer2DModel (diffusers models/transformers/transformer_qwenimage.py), published
// Qwen/Qwen-Image transformer/config.json. FORMATS.md §6.1.
#include "model/catalog/catalog_builder.hpp"
#include "model/catalog/catalog_parts.hpp"

namespace dmem::detail {

Component qwen_image_transformer(DType dtype) {
  constexpr std::uint64_t kLayers = 60, kHeads = 24, kHeadDim = 128, kJoint = 3584;
  constexpr std::uint64_t kIn = 64, kOut = 16, kPatch = 2;
  constexpr std::uint64_t D = kHeads * kHeadDim;

  TensorListBuilder b(dtype, 1933);
  two_layer_mlp(b, "time_text_embed.timestep_embedder", 256, D, D);
  b.vec("txt_norm", kJoint);
  b.linear("img_in", kIn, D);
  b.linear("txt_in", kJoint, D);
  for (std::uint64_t i = 0; i < kLayers; ++i) {
    const std::string blk = indexed("transformer_blocks", i);
    b.linear(join(blk, "img_mod.1"), D, 6 * D);
    joint_attention(b, join(blk, "attn"), D, kHeads, kHeadDim, {});
    feed_forward(b, join(blk, "img_mlp"), D, 4 * D);
    b.linear(join(blk, "txt_mod.1"), D, 6 * D);
    feed_forward(b, join(blk, "txt_mlp"), D, 4 * D);
  }
  b.linear("norm_out.linear", D, 2 * D);
  b.linear("proj_out", D, kPatch * kPatch * kOut);

  Component c;
  c.name = "transformer";
  c.role = Role::denoiser;
  c.class_name = "QwenImageTransformer2DModel";
  c.arch.family = "qwen-image-dit";
  c.arch.hidden = static_cast<std::uint32_t>(D);
  c.arch.layers = kLayers;
  c.arch.heads = kHeads;
  c.arch.head_dim = kHeadDim;
  c.arch.ffn = static_cast<std::uint32_t>(4 * D);
  c.arch.patch = kPatch;
  c.arch.patch_t = 1;
  c.arch.in_channels = kIn;
  c.arch.latent_channels = kOut;
  c.arch.vae_scale = 8;
  c.arch.vae_scale_t = 4;
  c.arch.text_dim = kJoint;
  c.arch.max_text_tokens = 512;  // pipeline max_sequence_length
  c.tensors = b.take();
  c.config_json = R"({
  "_class_name": "QwenImageTransformer2DModel",
  "attention_head_dim": 128,
  "axes_dims_rope": [16, 56, 56],
  "guidance_embeds": false,
  "in_channels": 64,
  "joint_attention_dim": 3584,
  "num_attention_heads": 24,
  "num_layers": 60,
  "out_channels": 16,
  "patch_size": 2,
  "pooled_projection_dim": 768
})";
  return c;
}

}  // namespace dmem::detail
