// Checkpoint layouts computed before any tensor data exists: the header bytes and where every
// tensor's bytes go. write_safetensors / write_gguf use them to write from memory; conversion uses
// them to write a header first and then each tensor as it is produced (docs/convert.md).
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "dmem/status.hpp"
#include "dmem/writer.hpp"

namespace dmem::detail {

struct WriteLayout {
  std::vector<unsigned char> head;     ///< bytes [0, first tensor): prefix, header, padding
  std::vector<std::uint64_t> offsets;  ///< absolute offset of each input tensor (input order)
  std::vector<std::size_t> order;      ///< input indexes in file order
  std::uint64_t file_size = 0;         ///< bytes of the whole file (GGUF: with the last padding)
};

/// The safetensors layout write_safetensors() writes (same validation; `need_data` false skips
/// the check that every tensor has data, for layouts computed ahead of the data).
[[nodiscard]] Result<WriteLayout> safetensors_layout(
    std::string_view path, std::span<const TensorData> tensors,
    std::span<const std::pair<std::string, std::string>> metadata, bool need_data) noexcept;

/// The GGUF v3 layout write_gguf() writes; padding between tensors is zero bytes (a file
/// written by offset leaves them as holes, which read as zeros).
[[nodiscard]] Result<WriteLayout> gguf_layout(std::string_view path,
                                              std::span<const TensorData> tensors,
                                              std::span<const GgufKv> metadata,
                                              std::uint32_t alignment, bool need_data) noexcept;

}  // namespace dmem::detail
