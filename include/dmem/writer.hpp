// Checkpoint writers (safetensors, GGUF): used by tests now and by conversion later.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "dmem/checkpoint.hpp"
#include "dmem/status.hpp"

namespace dmem {
inline namespace v1 {

/// A tensor to write: its header fields and a pointer to exactly `nbytes` of data.
struct TensorData {
  std::string name;
  DType dtype = DType::f32;
  std::vector<std::uint64_t> shape;  ///< PyTorch order
  const void* data = nullptr;
  std::uint64_t nbytes = 0;
};

/// Writes a .safetensors file as the reference writer does: tensors sorted by descending
/// alignment then name, header padded with spaces to a multiple of 8 bytes, written to a
/// temporary file in the same folder and renamed into place (nothing is left on failure).
[[nodiscard]] Status write_safetensors(
    std::string_view path, std::span<const TensorData> tensors,
    std::span<const std::pair<std::string, std::string>> metadata = {}) noexcept;

/// Writes a GGUF v3 file: metadata in the given order, tensors in the given order, each padded
/// to `alignment` (written as general.alignment when not 32). Temp file + rename.
[[nodiscard]] Status write_gguf(std::string_view path, std::span<const TensorData> tensors,
                                std::span<const GgufKv> metadata = {},
                                std::uint32_t alignment = 32) noexcept;

}  // namespace v1
}  // namespace dmem
