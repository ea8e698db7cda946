// Exact sizes of a component derived from its tensor names: blocks, leaves, castable and linear
// bytes.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "dmem/model.hpp"

namespace dmem {
inline namespace v1 {

/// A repeated numbered child that owns sub-modules ("transformer_blocks.12").
struct BlockInfo {
  std::string name;
  std::uint64_t bytes = 0;
  std::uint64_t params = 0;
  std::uint32_t tensors = 0;
  std::uint64_t castable_bytes = 0;
  std::uint64_t linear_bytes = 0;
};

/// All blocks under one container ("transformer_blocks"), in index order.
struct BlockSequence {
  std::string prefix;
  std::vector<BlockInfo> blocks;
};

/// A module that owns parameters directly ("transformer_blocks.12.attn.to_q").
struct LeafInfo {
  std::string name;
  std::uint64_t bytes = 0;
  std::uint64_t params = 0;
  bool castable = false;     ///< layerwise casting may store it in fp8
  bool linear = false;       ///< owns a 2-D linear weight a quantizer may act on
  int block = -1;            ///< index into ComponentSummary::blocks, -1 outside any block
  std::string prequantized;  ///< "bnb nf4", "bnb fp4", "bnb int8", "fp8 scaled": stored quantized
};

struct ComponentSummary {
  std::string name;
  Role role = Role::other;
  std::uint64_t tensors = 0;
  std::uint64_t params = 0;
  std::uint64_t bytes = 0;
  std::vector<std::pair<DType, std::uint64_t>> bytes_by_dtype;  ///< largest first
  std::vector<BlockSequence> sequences;
  std::vector<BlockInfo> blocks;  ///< every block of every sequence, in tensor order
  std::uint64_t max_block_bytes = 0;
  std::string largest_block;
  std::uint64_t block_bytes = 0;      ///< bytes inside blocks
  std::uint64_t non_block_bytes = 0;  ///< bytes outside blocks (embeddings, heads, norms)
  std::vector<LeafInfo> leaves;
  std::string largest_leaf;
  std::uint64_t max_leaf_bytes = 0;
  std::uint64_t castable_bytes = 0;  ///< bytes layerwise casting would convert
  std::uint64_t linear_bytes = 0;    ///< bytes of linear weights (what quantizers act on)
  std::uint64_t linear_params = 0;
  std::uint64_t prequantized_bytes = 0;  ///< bytes of leaves stored pre-quantized (with state)
  std::string prequantized;              ///< the first pre-quantized storage found, or empty
};

/// Layerwise-casting skip patterns for a component (defaults plus per-class ones), as regexes
/// searched in full module names.
[[nodiscard]] std::vector<std::string> cast_skip_patterns(const Component& component);

/// Builds the module tree of one component and measures it. Pure arithmetic on headers.
[[nodiscard]] ComponentSummary summarize(const Component& component);

}  // namespace v1
}  // namespace dmem
