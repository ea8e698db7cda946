// Internal: a small state-dict builder the catalog generators share (names, shapes, exact bytes).
#pragma once

#include <cstdint>
#include <initializer_list>
#include <string>
#include <string_view>
#include <vector>

#include "dmem/model.hpp"
#include "dmem/tensor.hpp"

namespace dmem::detail {

/// Appends tensors in module order, as a PyTorch state dict would list them. Linear weights are
/// [out, in], convolution weights [out, in, *kernel].
class TensorListBuilder {
 public:
  TensorListBuilder(DType dtype, std::size_t expected_tensors);

  /// Any tensor (parameters and persistent buffers).
  void add(std::string_view name, std::initializer_list<std::uint64_t> shape);
  /// nn.Linear: `prefix.weight` [out, in] and optionally `prefix.bias` [out].
  void linear(std::string_view prefix, std::uint64_t in, std::uint64_t out, bool bias = true);
  /// A single vector parameter `prefix.param` [n] (RMSNorm weight and the like).
  void vec(std::string_view prefix, std::uint64_t n, std::string_view param = "weight");
  /// Affine LayerNorm / GroupNorm: `prefix.weight` and `prefix.bias` [n].
  void norm(std::string_view prefix, std::uint64_t n);
  /// nn.Conv{1,2,3}d: `prefix.weight` [out, in, *kernel] and optionally `prefix.bias` [out].
  void conv(std::string_view prefix, std::uint64_t in, std::uint64_t out,
            std::initializer_list<std::uint64_t> kernel, bool bias = true);

  [[nodiscard]] std::vector<TensorInfo> take() { return std::move(tensors_); }

 private:
  void push(std::string name, std::vector<std::uint64_t> shape);

  DType dtype_;
  std::vector<TensorInfo> tensors_;
};

// ---- diffusers building blocks (diffusers/models/embeddings.py, attention.py) -----------------

/// TimestepEmbedding and PixArtAlphaTextProjection: linear_1 [mid, in], linear_2 [out, mid].
void two_layer_mlp(TensorListBuilder& b, std::string_view prefix, std::uint64_t in,
                   std::uint64_t mid, std::uint64_t out);

/// FeedForward: net.0.proj [inner (x2 when gated: GEGLU/SwiGLU), dim], net.2 [dim_out, inner].
void feed_forward(TensorListBuilder& b, std::string_view prefix, std::uint64_t dim,
                  std::uint64_t inner, bool gated = false, std::uint64_t dim_out = 0);

struct AttentionShape {
  bool qk_norm = true;            ///< RMSNorm(head_dim) on q/k (and added q/k)
  bool added = true;              ///< joint attention: add_{q,k,v}_proj for the context stream
  bool context_pre_only = false;  ///< no to_add_out (last SD3 block)
  bool pre_only = false;          ///< no to_out (FLUX single blocks)
};
/// Attention / FluxAttention / JointAttention with all projections biased.
void joint_attention(TensorListBuilder& b, std::string_view prefix, std::uint64_t dim,
                     std::uint64_t heads, std::uint64_t head_dim, AttentionShape shape);

/// "prefix.index" without going through iostreams.
[[nodiscard]] std::string indexed(std::string_view prefix, std::uint64_t index);
/// Replaces each "{}" in a config template, in order, with the next value.
[[nodiscard]] std::string fill_template(std::string_view text,
                                        std::initializer_list<std::string_view> values);
/// "a.b": joins two name parts with a dot.
[[nodiscard]] std::string join(std::string_view a, std::string_view b);

}  // namespace dmem::detail
