// Vectorised GGML dequantization: whole runs of blocks to f32, bit-identical to the scalar
// reference in block_quant.cpp (same operations in the same order, no fused multiply-add).
#pragma once

#include <cstddef>
#include <cstdint>

#include "dmem/dtype.hpp"

namespace dmem::detail {

using DequantBlocksFn = void (*)(const std::uint8_t* blocks, float* out,
                                 std::size_t block_count) noexcept;

/// The AVX2 kernel for `type` (q8_0 q4_0 q4_k q5_k q6_k), or nullptr: none for the type, or
/// none in this build. The caller checks cpu_path().
[[nodiscard]] DequantBlocksFn dequant_blocks_avx2(DType type) noexcept;

}  // namespace dmem::detail
