// WanTransformer3DModel (diffusers models/transformers/transformer_wan.py), published
// Wan-AI/Wan2.1-T2V-14B-Diffusers transformer/config.json (T2V: no image embedder). FORMATS.md
// §6.8.
#include "model/catalog/catalog_builder.hpp"
#include "model/catalog/catalog_parts.hpp"

namespace dmem::detail {

Component wan21_t2v_14b_transformer(DType dtype) {
  constexpr std::uint64_t kLayers = 40, kHeads = 40, kHeadDim = 128, kFfn = 13824;
  constexpr std::uint64_t kIn = 16, kOut = 16, kText = 4096, kFreq = 256;
  constexpr std::uint64_t kPt = 1, kPh = 2, kPw = 2;
  constexpr std::uint64_t D = kHeads * kHeadDim;

  TensorListBuilder b(dtype, 1095);
  b.conv("patch_embedding", kIn, D, {kPt, kPh, kPw});
  two_layer_mlp(b, "condition_embedder.time_embedder", kFreq, D, D);
  b.linear("condition_embedder.time_proj", D, 6 * D);
  two_layer_mlp(b, "condition_embedder.text_embedder", kText, D, D);
  for (std::uint64_t i = 0; i < kLayers; ++i) {
    const std::string blk = indexed("blocks", i);
    for (const char* a : {"attn1", "attn2"}) {
      const std::string attn = join(blk, a);
      for (const char* n : {"to_q", "to_k", "to_v", "to_out.0"}) b.linear(join(attn, n), D, D);
      b.vec(join(attn, "norm_q"), D);  // rms_norm_across_heads: RMSNorm(heads * head_dim)
      b.vec(join(attn, "norm_k"), D);
    }
    b.norm(join(blk, "norm2"), D);  // cross_attn_norm: FP32LayerNorm with affine parameters
    feed_forward(b, join(blk, "ffn"), D, kFfn);
    b.add(join(blk, "scale_shift_table"), {1, 6, D});
  }
  b.linear("proj_out", D, kOut * kPt * kPh * kPw);
  b.add("scale_shift_table", {1, 2, D});

  Component c;
  c.name = "transformer";
  c.role = Role::denoiser;
  c.class_name = "WanTransformer3DModel";
  c.arch.family = "wan-dit";
  c.arch.hidden = static_cast<std::uint32_t>(D);
  c.arch.layers = kLayers;
  c.arch.heads = kHeads;
  c.arch.head_dim = kHeadDim;
  c.arch.ffn = kFfn;
  c.arch.patch = kPh;
  c.arch.patch_t = kPt;
  c.arch.in_channels = kIn;
  c.arch.latent_channels = kOut;
  c.arch.vae_scale = 8;
  c.arch.vae_scale_t = 4;
  c.arch.text_dim = kText;
  c.arch.max_text_tokens = 512;  // pipeline max_sequence_length
  c.tensors = b.take();
  c.config_json = R"({
  "_class_name": "WanTransformer3DModel",
  "added_kv_proj_dim": null,
  "attention_head_dim": 128,
  "cross_attn_norm": true,
  "eps": 1e-06,
  "ffn_dim": 13824,
  "freq_dim": 256,
  "image_dim": null,
  "in_channels": 16,
  "num_attention_heads": 40,
  "num_layers": 40,
  "out_channels": 16,
  "patch_size": [1, 2, 2],
  "qk_norm": "rms_norm_across_heads",
  "rope_max_seq_len": 1024,
  "text_dim": 4096
})";
  return c;
}

}  // namespace dmem::detail
