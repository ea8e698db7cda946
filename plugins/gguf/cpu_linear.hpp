// y[n, out] = x[n, in] · W[out, in]^T + b on the CPU, in f32, with W produced a tile of rows at a
// time (dequantized into a small scratch buffer that stays in cache) instead of whole.
//
// Error bound (documented in plugins/gguf/README.md): every output is one dot product of length
// K = in plus the bias, summed in f32 with 8 partial sums; against the exact product of x and
// the dequantized weights, |y - y_exact| <= gamma(K + 1) * (sum_k |x_k * w_k| + |b|) with
// gamma(m) = m*u / (1 - m*u), u = 2^-24.
#pragma once

#include <algorithm>
#include <cstdint>
#include <vector>

namespace dmem_gguf {

/// Rows of W per tile: 16 rows of a 12288-wide layer are 768 KiB of f32.
inline constexpr std::uint64_t kLinearTileRows = 16;

/// `dequant_rows(first, count, float* dst)` writes rows [first, first + count) of W as f32 and
/// returns false on failure (then linear stops and returns false).
template <class DequantRows>
bool tiled_linear(const float* x, std::uint64_t tokens, std::uint64_t in, std::uint64_t out,
                  const float* bias, float* y, DequantRows&& dequant_rows) {
  std::vector<float> tile(kLinearTileRows * in);
  for (std::uint64_t o0 = 0; o0 < out; o0 += kLinearTileRows) {
    const std::uint64_t rows = std::min(kLinearTileRows, out - o0);
    if (!dequant_rows(o0, rows, tile.data())) return false;
    for (std::uint64_t n = 0; n < tokens; ++n) {
      const float* xr = x + n * in;
      for (std::uint64_t r = 0; r < rows; ++r) {
        const float* w = tile.data() + r * in;
        float acc[8] = {};
        std::uint64_t k = 0;
        for (; k + 8 <= in; k += 8)
          for (int j = 0; j < 8; ++j) acc[j] += xr[k + j] * w[k + j];
        for (; k < in; ++k) acc[0] += xr[k] * w[k];
        const float s =
            ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
        y[n * out + o0 + r] = bias ? s + bias[o0 + r] : s;
      }
    }
  }
  return true;
}

}  // namespace dmem_gguf
