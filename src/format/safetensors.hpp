// Internal safetensors facts shared by the reader and the writer (FORMATS.md §1.2, §1.4).
#pragma once

#include <cstdint>
#include <span>

#include "dmem/checkpoint.hpp"
#include "dmem/dtype.hpp"
#include "format/file_io.hpp"

namespace dmem::detail {

/// Bits per element of a dtype safetensors can store (F4: 4, F6_*: 6, BF16: 16); 0 for types
/// safetensors cannot store (GGML blocks).
[[nodiscard]] std::uint32_t safetensors_bits(DType type) noexcept;

/// Position of the dtype in the reference's `enum Dtype` (declared in increasing alignment
/// order). The writer sorts by this, descending, then by name. -1 when not storable.
[[nodiscard]] int safetensors_order(DType type) noexcept;

enum class SizeCheck { ok, overflow, misaligned };

/// Exact bytes of a tensor as the reference computes them: product of the dims and the element
/// bit count with checked arithmetic, then the whole-byte rule for sub-byte dtypes.
[[nodiscard]] SizeCheck safetensors_nbytes(DType type, std::span<const std::uint64_t> shape,
                                           std::uint64_t& nbytes) noexcept;

/// read_safetensors on a file already opened (so a caller that checked the file's identity
/// reads that very file).
[[nodiscard]] Result<SafetensorsFile> read_safetensors_file(const ReadFile& file) noexcept;

}  // namespace dmem::detail
