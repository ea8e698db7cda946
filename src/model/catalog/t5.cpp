// T5EncoderModel (google/t5-v1_1-xxl) and UMT5EncoderModel (google/umt5-xxl, Wan2.1's
// text_encoder), transformers models/t5 and models/umt5. FORMATS.md §6.5.
#include "model/catalog/catalog_builder.hpp"
#include "model/catalog/catalog_parts.hpp"

namespace dmem::detail {

Component t5_encoder(T5Variant variant, std::string name, std::uint32_t max_text_tokens,
                     DType dtype) {
  const bool umt5 = variant == T5Variant::umt5_xxl;
  constexpr std::uint64_t kModel = 4096, kKv = 64, kHeads = 64, kFf = 10240, kLayers = 24;
  constexpr std::uint64_t kBuckets = 32, kInner = kHeads * kKv;
  const std::uint64_t vocab = umt5 ? 256384 : 32128;

  TensorListBuilder b(dtype, umt5 ? 242 : 219);
  // encoder.embed_tokens.weight is tied to shared.weight and not stored separately.
  b.add("shared.weight", {vocab, kModel});
  for (std::uint64_t i = 0; i < kLayers; ++i) {
    const std::string layer = join(indexed("encoder.block", i), "layer");
    const std::string attn = join(layer, "0.SelfAttention");
    b.linear(join(attn, "q"), kModel, kInner, false);
    b.linear(join(attn, "k"), kModel, kInner, false);
    b.linear(join(attn, "v"), kModel, kInner, false);
    b.linear(join(attn, "o"), kInner, kModel, false);
    // T5 keeps one relative position bias (block 0); UMT5 has one per block.
    if (i == 0 || umt5) b.add(join(attn, "relative_attention_bias.weight"), {kBuckets, kHeads});
    b.vec(join(layer, "0.layer_norm"), kModel);
    b.linear(join(layer, "1.DenseReluDense.wi_0"), kModel, kFf, false);
    b.linear(join(layer, "1.DenseReluDense.wi_1"), kModel, kFf, false);
    b.linear(join(layer, "1.DenseReluDense.wo"), kFf, kModel, false);
    b.vec(join(layer, "1.layer_norm"), kModel);
  }
  b.vec("encoder.final_layer_norm", kModel);

  Component c;
  c.name = std::move(name);
  c.role = Role::text_encoder;
  c.class_name = umt5 ? "UMT5EncoderModel" : "T5EncoderModel";
  c.arch.family = umt5 ? "umt5" : "t5";
  c.arch.hidden = kModel;
  c.arch.layers = kLayers;
  c.arch.heads = kHeads;
  c.arch.head_dim = kKv;
  c.arch.ffn = kFf;
  c.arch.text_dim = kModel;
  c.arch.max_text_tokens = max_text_tokens;
  c.arch.vocab = static_cast<std::uint32_t>(vocab);
  c.tensors = b.take();
  const char* dtype_name = dtype == DType::f32   ? "float32"
                           : dtype == DType::f16 ? "float16"
                                                 : "bfloat16";
  const std::string vocab_text = std::to_string(vocab);
  c.config_json = fill_template(R"({
  "architectures": ["{}"],
  "d_ff": 10240,
  "d_kv": 64,
  "d_model": 4096,
  "dense_act_fn": "gelu_new",
  "feed_forward_proj": "gated-gelu",
  "is_gated_act": true,
  "layer_norm_epsilon": 1e-06,
  "model_type": "{}",
  "num_heads": 64,
  "num_layers": 24,
  "relative_attention_max_distance": 128,
  "relative_attention_num_buckets": 32,
  "tie_word_embeddings": false,
  "torch_dtype": "{}",
  "vocab_size": {}
})",
                                {c.class_name, umt5 ? "umt5" : "t5", dtype_name, vocab_text});
  return c;
}

}  // namespace dmem::detail
