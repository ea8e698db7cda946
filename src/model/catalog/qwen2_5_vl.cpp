// Qwen2_5_VLForConditionalGeneration (transformers models/qwen2_5_vl/modeling_qwen2_5_vl.py) with
// the Qwen2.5-VL-7B-Instruct config that Qwen-Image ships as its text_encoder. Keys use the legacy
// layout ("model.layers.*", "visual.*", "lm_head") of the original Qwen release; transformers >=
// 4.52 maps them to "model.language_model.*" / "model.visual.*" on load. FORMATS.md §6.2.
#include "model/catalog/catalog_builder.hpp"
#include "model/catalog/catalog_parts.hpp"

namespace dmem::detail {

Component qwen2_5_vl_7b(DType dtype) {
  constexpr std::uint64_t kVocab = 152064, kHidden = 3584, kInter = 18944, kLayers = 28;
  constexpr std::uint64_t kHeads = 28, kKvHeads = 4, kHeadDim = kHidden / kHeads;
  constexpr std::uint64_t kKv = kKvHeads * kHeadDim;
  // vision_config
  constexpr std::uint64_t kVDepth = 32, kVHidden = 1280, kVInter = 3420, kVIn = 3, kVPatch = 14;
  constexpr std::uint64_t kVTemporal = 2, kVMerge = 2, kVOut = 3584;
  constexpr std::uint64_t kMerged = kVHidden * kVMerge * kVMerge;

  TensorListBuilder b(dtype, 729);
  b.add("model.embed_tokens.weight", {kVocab, kHidden});
  for (std::uint64_t i = 0; i < kLayers; ++i) {
    const std::string blk = indexed("model.layers", i);
    b.linear(join(blk, "self_attn.q_proj"), kHidden, kHidden);
    b.linear(join(blk, "self_attn.k_proj"), kHidden, kKv);
    b.linear(join(blk, "self_attn.v_proj"), kHidden, kKv);
    b.linear(join(blk, "self_attn.o_proj"), kHidden, kHidden, false);
    b.linear(join(blk, "mlp.gate_proj"), kHidden, kInter, false);
    b.linear(join(blk, "mlp.up_proj"), kHidden, kInter, false);
    b.linear(join(blk, "mlp.down_proj"), kInter, kHidden, false);
    b.vec(join(blk, "input_layernorm"), kHidden);
    b.vec(join(blk, "post_attention_layernorm"), kHidden);
  }
  b.vec("model.norm", kHidden);
  b.add("lm_head.weight", {kVocab, kHidden});  // tie_word_embeddings false
  b.conv("visual.patch_embed.proj", kVIn, kVHidden, {kVTemporal, kVPatch, kVPatch}, false);
  for (std::uint64_t i = 0; i < kVDepth; ++i) {
    const std::string blk = indexed("visual.blocks", i);
    b.vec(join(blk, "norm1"), kVHidden);
    b.vec(join(blk, "norm2"), kVHidden);
    b.linear(join(blk, "attn.qkv"), kVHidden, 3 * kVHidden);
    b.linear(join(blk, "attn.proj"), kVHidden, kVHidden);
    b.linear(join(blk, "mlp.gate_proj"), kVHidden, kVInter);
    b.linear(join(blk, "mlp.up_proj"), kVHidden, kVInter);
    b.linear(join(blk, "mlp.down_proj"), kVInter, kVHidden);
  }
  b.vec("visual.merger.ln_q", kVHidden);
  b.linear("visual.merger.mlp.0", kMerged, kMerged);
  b.linear("visual.merger.mlp.2", kMerged, kVOut);

  Component c;
  c.name = "text_encoder";
  c.role = Role::text_encoder;
  c.class_name = "Qwen2_5_VLForConditionalGeneration";
  c.arch.family = "qwen2.5-vl";
  c.arch.hidden = kHidden;
  c.arch.layers = kLayers;
  c.arch.heads = kHeads;
  c.arch.head_dim = kHeadDim;
  c.arch.ffn = kInter;
  c.arch.patch = kVPatch;
  c.arch.patch_t = kVTemporal;
  c.arch.in_channels = kVIn;
  c.arch.text_dim = kHidden;
  c.arch.max_text_tokens = 512;  // QwenImagePipeline max_sequence_length
  c.arch.vocab = kVocab;
  c.tensors = b.take();
  c.config_json = R"({
  "architectures": ["Qwen2_5_VLForConditionalGeneration"],
  "hidden_act": "silu",
  "hidden_size": 3584,
  "intermediate_size": 18944,
  "max_position_embeddings": 128000,
  "model_type": "qwen2_5_vl",
  "num_attention_heads": 28,
  "num_hidden_layers": 28,
  "num_key_value_heads": 4,
  "rms_norm_eps": 1e-06,
  "rope_scaling": {"mrope_section": [16, 24, 24], "rope_type": "default", "type": "default"},
  "rope_theta": 1000000.0,
  "tie_word_embeddings": false,
  "torch_dtype": "bfloat16",
  "vision_config": {
    "depth": 32,
    "fullatt_block_indexes": [7, 15, 23, 31],
    "hidden_act": "silu",
    "hidden_size": 1280,
    "in_chans": 3,
    "intermediate_size": 3420,
    "num_heads": 16,
    "out_hidden_size": 3584,
    "patch_size": 14,
    "spatial_merge_size": 2,
    "temporal_patch_size": 2,
    "tokens_per_second": 2,
    "window_size": 112
  },
  "vocab_size": 152064
})";
  return c;
}

}  // namespace dmem::detail
