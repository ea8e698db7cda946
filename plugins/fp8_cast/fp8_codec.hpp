// f32 <-> fp8 (e4m3fn, e5m2) with PyTorch's CPU cast semantics, the same as dmem's core
// conversions (docs/dtypes.md, checked against torch 2.15 in tests/golden/dtype): round to
// nearest even; NaN -> sign | 0x7F; e4m3fn has no infinity and saturates |x| >= 480 and inf to
// +-448; e5m2 sends |x| >= 61440 (after rounding) and inf to +-inf. Decoding uses dmem's
// header-only tables (core/float_bits.hpp). Header-only: the plugin links no libdmem.
#pragma once

#include <bit>
#include <cmath>
#include <cstdint>

#include "core/float_bits.hpp"

namespace dmem_fp8 {

enum class Format : std::uint8_t { e4m3, e5m2 };

inline float largest(Format f) noexcept {
  return f == Format::e4m3 ? 448.0f : 57344.0f;
}

// |a| (finite, >= 0) to a minifloat code without sign, round to nearest even; may exceed the
// largest finite code, which the caller handles.
inline std::uint32_t round_code(float a, int man, int bias) noexcept {
  if (a == 0.0f) return 0;
  int e = 0;
  std::frexp(a, &e);
  e -= 1;  // a = g * 2^e, g in [1, 2)
  const int emin = 1 - bias;
  if (e < emin) return static_cast<std::uint32_t>(std::nearbyint(std::ldexp(a, man - emin)));
  auto q = static_cast<std::uint32_t>(std::nearbyint(std::ldexp(a, man - e)));
  if (q == (2u << man)) {
    q = 1u << man;
    ++e;
  }
  return (static_cast<std::uint32_t>(e + bias) << man) | (q - (1u << man));
}

inline std::uint8_t encode(Format f, float v) noexcept {
  const auto sign = static_cast<std::uint8_t>((std::bit_cast<std::uint32_t>(v) >> 24) & 0x80u);
  if (std::isnan(v)) return static_cast<std::uint8_t>(sign | 0x7Fu);
  const float a = std::fabs(v);
  if (f == Format::e4m3) {
    if (a >= 480.0f) return static_cast<std::uint8_t>(sign | 0x7Eu);
    const std::uint32_t c = round_code(a, 3, 7);
    return static_cast<std::uint8_t>(sign | (c > 0x7Eu ? 0x7Eu : c));
  }
  if (std::isinf(a) || a >= 65536.0f) return static_cast<std::uint8_t>(sign | 0x7Cu);
  const std::uint32_t c = round_code(a, 2, 15);
  return static_cast<std::uint8_t>(sign | (c >= 0x7Cu ? 0x7Cu : c));
}

inline float decode(Format f, std::uint8_t b) noexcept {
  return std::bit_cast<float>(f == Format::e4m3 ? dmem::detail::kF8E4m3ToF32[b]
                                                : dmem::detail::kF8E5m2ToF32[b]);
}

}  // namespace dmem_fp8
