// CLIPTextModel / CLIPTextModelWithProjection (transformers models/clip/modeling_clip.py):
// CLIP ViT-L/14 (openai/clip-vit-large-patch14) and OpenCLIP ViT-bigG/14 text towers.
// FORMATS.md §6.5.
#include "model/catalog/catalog_builder.hpp"
#include "model/catalog/catalog_parts.hpp"

namespace dmem::detail {

Component clip_text(ClipVariant variant, std::string name, DType dtype) {
  const bool big = variant == ClipVariant::vit_bigg14_projection;
  const bool projection = variant != ClipVariant::vit_l14;
  const std::uint64_t h = big ? 1280 : 768;
  const std::uint64_t inter = big ? 5120 : 3072;
  const std::uint64_t layers = big ? 32 : 12;
  const std::uint64_t heads = big ? 20 : 12;
  constexpr std::uint64_t kVocab = 49408, kPositions = 77;

  TensorListBuilder b(dtype, big ? 517 : 197);
  b.add("text_model.embeddings.token_embedding.weight", {kVocab, h});
  b.add("text_model.embeddings.position_embedding.weight", {kPositions, h});
  for (std::uint64_t i = 0; i < layers; ++i) {
    const std::string blk = indexed("text_model.encoder.layers", i);
    for (const char* n :
         {"self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.out_proj"})
      b.linear(join(blk, n), h, h);
    b.norm(join(blk, "layer_norm1"), h);
    b.norm(join(blk, "layer_norm2"), h);
    b.linear(join(blk, "mlp.fc1"), h, inter);
    b.linear(join(blk, "mlp.fc2"), inter, h);
  }
  b.norm("text_model.final_layer_norm", h);
  if (projection) b.add("text_projection.weight", {h, h});  // projection_dim == hidden here

  Component c;
  c.name = std::move(name);
  c.role = Role::text_encoder;
  c.class_name = projection ? "CLIPTextModelWithProjection" : "CLIPTextModel";
  c.arch.family = "clip";
  c.arch.hidden = static_cast<std::uint32_t>(h);
  c.arch.layers = static_cast<std::uint32_t>(layers);
  c.arch.heads = static_cast<std::uint32_t>(heads);
  c.arch.head_dim = 64;
  c.arch.ffn = static_cast<std::uint32_t>(inter);
  c.arch.text_dim = static_cast<std::uint32_t>(h);
  c.arch.max_text_tokens = kPositions;
  c.arch.vocab = kVocab;
  c.tensors = b.take();
  const char* dtype_name = dtype == DType::f32   ? "float32"
                           : dtype == DType::f16 ? "float16"
                                                 : "bfloat16";
  const std::string hidden = std::to_string(h), ffn = std::to_string(inter);
  const std::string n_heads = std::to_string(heads), n_layers = std::to_string(layers);
  c.config_json = fill_template(R"({
  "architectures": ["{}"],
  "hidden_act": "{}",
  "hidden_size": {},
  "intermediate_size": {},
  "max_position_embeddings": 77,
  "model_type": "clip_text_model",
  "num_attention_heads": {},
  "num_hidden_layers": {},
  "projection_dim": {},
  "torch_dtype": "{}",
  "vocab_size": 49408
})",
                                {c.class_name, big ? "gelu" : "quick_gelu", hidden, ffn, n_heads,
                                 n_layers, hidden, dtype_name});
  return c;
}

}  // namespace dmem::detail
