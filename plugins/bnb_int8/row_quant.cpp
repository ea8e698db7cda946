#include "row_quant.hpp"

#include <algorithm>
#include <cmath>

namespace dmem_bnb {

float quantize_row(const float* w, std::uint64_t cols, std::int8_t* cb) noexcept {
  float absmax = 0.0f;
  for (std::uint64_t c = 0; c < cols; ++c) absmax = std::max(absmax, std::fabs(w[c]));
  // bitsandbytes multiplies by the f32 reciprocal (127 / SCB), not divides by SCB / 127; torch
  // evaluates `127 / t` as t.reciprocal() * 127 (Tensor.__rtruediv__), two roundings: with one
  // division an exact tie (w = SCB / 2) can round the other way.
  const float inv = (1.0f / absmax) * 127.0f;
  for (std::uint64_t c = 0; c < cols; ++c) {
    const float q = absmax > 0.0f ? std::nearbyint(w[c] * inv) : 0.0f;
    cb[c] = static_cast<std::int8_t>(std::clamp(q, -127.0f, 127.0f));
  }
  return absmax;
}

void dequantize_row(const std::int8_t* cb, float scb, std::uint64_t cols, float* w) noexcept {
  // bitsandbytes: A * stats * 7.874015718698502e-3, the constant applied as an f32.
  constexpr float k = 7.874015718698502e-3f;
  for (std::uint64_t c = 0; c < cols; ++c) w[c] = static_cast<float>(cb[c]) * scb * k;
}

}  // namespace dmem_bnb
