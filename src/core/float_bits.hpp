// Exact bit-level conversions between f32 and the 16- and 8-bit float formats, shared by the
// public scalar functions and the scalar and AVX2 buffer kernels so every path rounds alike.
// NaN rules are PyTorch's CPU casts: f16 ones follow x86 F16C (vcvtph2ps / vcvtps2ph: the payload
// is kept and the NaN quieted); f32 -> bf16 gives 0xFFFF; fp8 as c10's Float8 types.
#pragma once

#include <array>
#include <bit>
#include <cstdint>

namespace dmem::detail {

/// f16 -> f32. NaN keeps its payload (shifted into the top of the f32 mantissa), quieted.
constexpr std::uint32_t f16_to_f32_bits(std::uint16_t h) noexcept {
  const std::uint32_t sign = static_cast<std::uint32_t>(h & 0x8000u) << 16;
  const std::uint32_t exp = (h >> 10) & 0x1Fu;
  std::uint32_t man = h & 0x3FFu;
  if (exp == 0x1F) return sign | 0x7F800000u | (man << 13) | (man != 0 ? 0x00400000u : 0u);
  if (exp != 0) return sign | ((exp + 112u) << 23) | (man << 13);
  if (man == 0) return sign;
  // Subnormal: move the leading one to bit 10 and lower the exponent to match.
  const int shift = std::countl_zero(man) - 21;
  man <<= shift;
  return sign | (static_cast<std::uint32_t>(113 - shift) << 23) | ((man & 0x3FFu) << 13);
}

/// f32 -> f16, round to nearest even; overflow to infinity; NaN quieted with the top payload bits.
constexpr std::uint16_t f32_to_f16_bits(std::uint32_t u) noexcept {
  const std::uint32_t sign = (u >> 16) & 0x8000u;
  const std::uint32_t abs = u & 0x7FFFFFFFu;
  if (abs > 0x7F800000u) return static_cast<std::uint16_t>(sign | 0x7E00u | ((abs >> 13) & 0x3FFu));
  if (abs >= 0x477FF000u) return static_cast<std::uint16_t>(sign | 0x7C00u);  // >= 65520
  if (abs >= 0x38800000u) {  // normal f16 (>= 2^-14): rebias, then round the 13 dropped bits
    std::uint32_t r = abs - (112u << 23);
    r += 0x0FFFu + ((r >> 13) & 1u);
    return static_cast<std::uint16_t>(sign | (r >> 13));
  }
  if (abs <= 0x33000000u) return static_cast<std::uint16_t>(sign);  // <= 2^-25: ties to zero
  // Subnormal f16: the result is round(|x| * 2^24) = mantissa (with its implicit one) >> shift.
  const std::uint32_t e = abs >> 23;
  const std::uint32_t m = (abs & 0x7FFFFFu) | 0x800000u;
  const std::uint32_t shift = 126u - e;  // 14..24
  std::uint32_t q = m >> shift;
  const std::uint32_t rem = m & ((1u << shift) - 1u), half = 1u << (shift - 1u);
  if (rem > half || (rem == half && (q & 1u) != 0)) ++q;  // may carry into the smallest normal
  return static_cast<std::uint16_t>(sign | q);
}

constexpr std::uint32_t bf16_to_f32_bits(std::uint16_t h) noexcept {
  return static_cast<std::uint32_t>(h) << 16;
}

/// f32 -> bf16, round to nearest even (overflow reaches infinity by carry). Every NaN becomes
/// 0xFFFF, as PyTorch's vectorised x86 cast (AVX2 and AVX-512) gives.
constexpr std::uint16_t f32_to_bf16_bits(std::uint32_t u) noexcept {
  if ((u & 0x7FFFFFFFu) > 0x7F800000u) return 0xFFFFu;
  u += 0x7FFFu + ((u >> 16) & 1u);
  return static_cast<std::uint16_t>(u >> 16);
}

/// fp8 e4m3fn -> f32 bits as PyTorch decodes them (0x7F / 0xFF are NaN: 0x7FF00000 | sign).
constexpr std::uint32_t f8_e4m3_to_f32_bits(std::uint8_t b) noexcept {
  const std::uint32_t sign = static_cast<std::uint32_t>(b & 0x80u) << 24;
  const std::uint32_t exp = (b >> 3) & 0x0Fu;
  std::uint32_t man = b & 0x07u;
  if ((b & 0x7Fu) == 0x7Fu) return sign | 0x7FF00000u;
  if (exp != 0) return sign | ((exp + 120u) << 23) | (man << 20);
  if (man == 0) return sign;
  const int shift = std::countl_zero(man) - 28;  // leading one to bit 3
  man <<= shift;
  return sign | (static_cast<std::uint32_t>(121 - shift) << 23) | ((man & 0x07u) << 20);
}

/// fp8 e5m2 is the top byte of an f16.
constexpr std::uint32_t f8_e5m2_to_f32_bits(std::uint8_t b) noexcept {
  return f16_to_f32_bits(static_cast<std::uint16_t>(b << 8));
}

// f32 -> fp8 e4m3fn as PyTorch casts: nearest even; |x| >= 448 and infinities saturate to 448
// (e4m3fn has no infinity); NaN keeps its sign. Integer rounding for normal codes; below 2^-6 the
// codes are multiples of 2^-9, and adding 2^14 (whose ulp is 2^-9) rounds there to nearest even.
// The AVX2 kernel computes the same steps per lane.
constexpr std::uint8_t f32_to_f8_e4m3_bits(std::uint32_t u) noexcept {
  const std::uint32_t abs = u & 0x7FFFFFFFu;
  const auto sign = static_cast<std::uint8_t>((u >> 24) & 0x80u);
  if (abs > 0x7F800000u) return static_cast<std::uint8_t>(sign | 0x7Fu);
  if (abs >= 0x43E00000u) return static_cast<std::uint8_t>(sign | 0x7Eu);  // 448
  if (abs < 0x3C800000u) {                                                 // 2^-6
    const float shifted = std::bit_cast<float>(abs) + 16384.0f;
    return static_cast<std::uint8_t>(sign | (std::bit_cast<std::uint32_t>(shifted) - 0x46800000u));
  }
  const std::uint32_t rounded = abs + 0x7FFFFu + ((abs >> 20) & 1u);
  return static_cast<std::uint8_t>(sign | ((rounded >> 20) - (120u << 3)));
}

// f32 -> fp8 e5m2 as PyTorch casts: nearest even; from 61440 (halfway to 2^16) up, infinity;
// NaN keeps its sign. The same two steps as e4m3 (subnormal step 2^-16: add 2^7).
constexpr std::uint8_t f32_to_f8_e5m2_bits(std::uint32_t u) noexcept {
  const std::uint32_t abs = u & 0x7FFFFFFFu;
  const auto sign = static_cast<std::uint8_t>((u >> 24) & 0x80u);
  if (abs > 0x7F800000u) return static_cast<std::uint8_t>(sign | 0x7Fu);
  if (abs >= 0x47700000u) return static_cast<std::uint8_t>(sign | 0x7Cu);  // 61440
  if (abs < 0x38800000u) {                                                 // 2^-14
    const float shifted = std::bit_cast<float>(abs) + 128.0f;
    return static_cast<std::uint8_t>(sign | (std::bit_cast<std::uint32_t>(shifted) - 0x43000000u));
  }
  const std::uint32_t rounded = abs + 0xFFFFFu + ((abs >> 21) & 1u);
  return static_cast<std::uint8_t>(sign | ((rounded >> 21) - (112u << 2)));
}

template <std::uint32_t (*Decode)(std::uint8_t) noexcept>
constexpr std::array<std::uint32_t, 256> make_byte_table() noexcept {
  std::array<std::uint32_t, 256> t{};
  for (unsigned i = 0; i < 256; ++i) t[i] = Decode(static_cast<std::uint8_t>(i));
  return t;
}

/// Every fp8 code's f32 bits: the buffer kernels decode by table look-up.
inline constexpr std::array<std::uint32_t, 256> kF8E4m3ToF32 =
    make_byte_table<f8_e4m3_to_f32_bits>();
inline constexpr std::array<std::uint32_t, 256> kF8E5m2ToF32 =
    make_byte_table<f8_e5m2_to_f32_bits>();

}  // namespace dmem::detail
