// TensorInfo: what a checkpoint header says about one tensor (no data).
#pragma once

#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "dmem/dtype.hpp"

namespace dmem {
inline namespace v1 {

/// Marks a tensor that lives in no file (built-in catalog models).
inline constexpr std::uint32_t kNoFile = std::numeric_limits<std::uint32_t>::max();

struct TensorInfo {
  std::string name;  ///< full name within its component ("transformer_blocks.0.attn.to_q.weight")
  DType dtype = DType::f32;
  std::vector<std::uint64_t> shape;  ///< PyTorch order, outermost first (GGUF `ne` is reversed)
  std::uint64_t nbytes = 0;          ///< exact stored bytes
  std::uint32_t file = kNoFile;      ///< index into the owning Component's `files`
  std::uint64_t offset = 0;          ///< absolute byte offset of the data in that file

  [[nodiscard]] std::uint64_t elements() const noexcept {
    std::uint64_t n = 1;
    for (auto d : shape) n *= d;
    return n;
  }
};

}  // namespace v1
}  // namespace dmem
