// Vectorised GGML dequantization: whole runs of blocks to f32, bit-identical to the scalar
// reference in block_quant.cpp (same operations in the same order, no fused multiply-add).
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>

#include "core/float_bits.hpp"
#include "dmem/dtype.hpp"

namespace dmem::detail {

/// A block's f16 scale at `p` (unaligned) as f32, NaN payloads kept. Shared by the scalar and
/// vector paths so they read scales the same way.
inline float block_half_at(const std::uint8_t* p) noexcept {
  std::uint16_t h;
  std::memcpy(&h, p, 2);
  const std::uint32_t bits = f16_to_f32_bits(h);
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

/// The 6-bit scale and minimum of sub-block j of a Q4_K / Q5_K block (ggml's get_scale_min_k4).
inline void scale_min_k4(int j, const std::uint8_t* q, std::uint8_t& sc, std::uint8_t& m) noexcept {
  if (j < 4) {
    sc = q[j] & 63;
    m = q[j + 4] & 63;
  } else {
    sc = static_cast<std::uint8_t>((q[j + 4] & 0x0F) | ((q[j - 4] >> 6) << 4));
    m = static_cast<std::uint8_t>((q[j + 4] >> 4) | ((q[j] >> 6) << 4));
  }
}

using DequantBlocksFn = void (*)(const std::uint8_t* blocks, float* out,
                                 std::size_t block_count) noexcept;

/// The AVX2 kernel for `type` (q8_0 q4_0 q4_k q5_k q6_k), or nullptr: none for the type, or
/// none in this build. The caller checks cpu_path().
[[nodiscard]] DequantBlocksFn dequant_blocks_avx2(DType type) noexcept;

}  // namespace dmem::detail
