// AVX2 dequantization of the common GGML block types. Each value is computed with the same
// operations, in the same order, as block_quant.cpp's scalar reference (ggml's): an int to
// float conversion, a multiply, and for the k-quants with a minimum a separate subtract.
// The target has no "fma", so nothing can be fused and every result rounds as the scalar one.
#include <cstring>

#include "core/cpu_features.hpp"
#include "core/dequant_kernels.hpp"
#include "core/float_bits.hpp"

#if DMEM_HAVE_AVX2_KERNELS
#include <immintrin.h>
#endif

namespace dmem::detail {

#if DMEM_HAVE_AVX2_KERNELS
namespace {
using u8 = std::uint8_t;
constexpr auto half_at = block_half_at;

DMEM_TARGET_AVX2 inline __m256i load32(const u8* p) {
  return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
}
DMEM_TARGET_AVX2 inline __m128i load16(const u8* p) {
  return _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
}

// 8 signed bytes (the low 8 of `v`) to floats.
DMEM_TARGET_AVX2 inline __m256 i8_to_ps(__m128i v) {
  return _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(v));
}

// y[0..31] = float(q[j]) * d for 32 signed bytes.
DMEM_TARGET_AVX2 inline void scale32(__m256i q, __m256 d, float* y) {
  const __m128i lo = _mm256_castsi256_si128(q), hi = _mm256_extracti128_si256(q, 1);
  _mm256_storeu_ps(y, _mm256_mul_ps(i8_to_ps(lo), d));
  _mm256_storeu_ps(y + 8, _mm256_mul_ps(i8_to_ps(_mm_srli_si128(lo, 8)), d));
  _mm256_storeu_ps(y + 16, _mm256_mul_ps(i8_to_ps(hi), d));
  _mm256_storeu_ps(y + 24, _mm256_mul_ps(i8_to_ps(_mm_srli_si128(hi, 8)), d));
}

// y[0..31] = d * float(q[j]) - m for 32 unsigned bytes below 128.
DMEM_TARGET_AVX2 inline void scale_min32(__m256i q, __m256 d, __m256 m, float* y) {
  const __m128i lo = _mm256_castsi256_si128(q), hi = _mm256_extracti128_si256(q, 1);
  _mm256_storeu_ps(y, _mm256_sub_ps(_mm256_mul_ps(d, i8_to_ps(lo)), m));
  _mm256_storeu_ps(y + 8, _mm256_sub_ps(_mm256_mul_ps(d, i8_to_ps(_mm_srli_si128(lo, 8))), m));
  _mm256_storeu_ps(y + 16, _mm256_sub_ps(_mm256_mul_ps(d, i8_to_ps(hi)), m));
  _mm256_storeu_ps(y + 24, _mm256_sub_ps(_mm256_mul_ps(d, i8_to_ps(_mm_srli_si128(hi, 8))), m));
}

// Q8_0: d, qs[32].
DMEM_TARGET_AVX2 void q8_0(const u8* b, float* y, std::size_t n) noexcept {
  for (std::size_t i = 0; i < n; ++i, b += 34, y += 32)
    scale32(load32(b + 2), _mm256_set1_ps(half_at(b)), y);
}

// Q4_0: d, qs[16]; low nibbles are values 0-15, high nibbles 16-31, both minus 8.
DMEM_TARGET_AVX2 void q4_0(const u8* b, float* y, std::size_t n) noexcept {
  const __m128i mask = _mm_set1_epi8(0x0F), eight = _mm_set1_epi8(8);
  for (std::size_t i = 0; i < n; ++i, b += 18, y += 32) {
    const __m128i qs = load16(b + 2);
    const __m128i lo = _mm_sub_epi8(_mm_and_si128(qs, mask), eight);
    const __m128i hi = _mm_sub_epi8(_mm_and_si128(_mm_srli_epi16(qs, 4), mask), eight);
    scale32(_mm256_set_m128i(hi, lo), _mm256_set1_ps(half_at(b)), y);
  }
}

// Q4_K: d, dmin, scales[12], qs[128]: four chunks of 32 bytes, low nibbles then high nibbles,
// each 32 values with their own scale and minimum.
DMEM_TARGET_AVX2 void q4_k(const u8* b, float* y, std::size_t n) noexcept {
  const __m256i mask = _mm256_set1_epi8(0x0F);
  for (std::size_t i = 0; i < n; ++i, b += 144, y += 256) {
    const float d = half_at(b), dmin = half_at(b + 2);
    const u8* q = b + 16;
    for (int c = 0; c < 4; ++c, q += 32) {
      u8 sc, m;
      scale_min_k4(2 * c, b + 4, sc, m);
      const float d1 = d * sc, m1 = dmin * m;
      scale_min_k4(2 * c + 1, b + 4, sc, m);
      const float d2 = d * sc, m2 = dmin * m;
      const __m256i qs = load32(q);
      scale_min32(_mm256_and_si256(qs, mask), _mm256_set1_ps(d1), _mm256_set1_ps(m1), y + 64 * c);
      scale_min32(_mm256_and_si256(_mm256_srli_epi16(qs, 4), mask), _mm256_set1_ps(d2),
                  _mm256_set1_ps(m2), y + 64 * c + 32);
    }
  }
}

// Q5_K: d, dmin, scales[12], qh[32], qs[128]; as Q4_K with a fifth bit per value from qh
// (bit 2c for the low nibbles of chunk c, bit 2c+1 for the high ones).
DMEM_TARGET_AVX2 void q5_k(const u8* b, float* y, std::size_t n) noexcept {
  const __m256i mask = _mm256_set1_epi8(0x0F), sixteen = _mm256_set1_epi8(16);
  for (std::size_t i = 0; i < n; ++i, b += 176, y += 256) {
    const float d = half_at(b), dmin = half_at(b + 2);
    const __m256i qh = load32(b + 16);
    const u8* q = b + 48;
    for (int c = 0; c < 4; ++c, q += 32) {
      u8 sc, m;
      scale_min_k4(2 * c, b + 4, sc, m);
      const float d1 = d * sc, m1 = dmin * m;
      scale_min_k4(2 * c + 1, b + 4, sc, m);
      const float d2 = d * sc, m2 = dmin * m;
      const __m256i bit1 = _mm256_set1_epi8(static_cast<char>(1 << (2 * c)));
      const __m256i bit2 = _mm256_set1_epi8(static_cast<char>(2 << (2 * c)));
      const __m256i h1 =
          _mm256_and_si256(_mm256_cmpeq_epi8(_mm256_and_si256(qh, bit1), bit1), sixteen);
      const __m256i h2 =
          _mm256_and_si256(_mm256_cmpeq_epi8(_mm256_and_si256(qh, bit2), bit2), sixteen);
      const __m256i qs = load32(q);
      scale_min32(_mm256_or_si256(_mm256_and_si256(qs, mask), h1), _mm256_set1_ps(d1),
                  _mm256_set1_ps(m1), y + 64 * c);
      scale_min32(_mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(qs, 4), mask), h2),
                  _mm256_set1_ps(d2), _mm256_set1_ps(m2), y + 64 * c + 32);
    }
  }
}

// y[0..31] = (d * sc) * float(q[j]) with the scale changing after 16 values, as ggml's order.
DMEM_TARGET_AVX2 inline void scale32_halves(__m256i q, float s0, float s1, float* y) {
  const __m128i lo = _mm256_castsi256_si128(q), hi = _mm256_extracti128_si256(q, 1);
  const __m256 a = _mm256_set1_ps(s0), c = _mm256_set1_ps(s1);
  _mm256_storeu_ps(y, _mm256_mul_ps(a, i8_to_ps(lo)));
  _mm256_storeu_ps(y + 8, _mm256_mul_ps(a, i8_to_ps(_mm_srli_si128(lo, 8))));
  _mm256_storeu_ps(y + 16, _mm256_mul_ps(c, i8_to_ps(hi)));
  _mm256_storeu_ps(y + 24, _mm256_mul_ps(c, i8_to_ps(_mm_srli_si128(hi, 8))));
}

// Q6_K: ql[128], qh[64], scales[16] (int8), d. Per half of 128 values: four groups of 32 built
// from ql nibbles and 2-bit pieces of qh, minus 32; a scale per 16 values.
DMEM_TARGET_AVX2 void q6_k(const u8* b, float* y, std::size_t n) noexcept {
  const __m256i m4 = _mm256_set1_epi8(0x0F), m2 = _mm256_set1_epi8(3), off = _mm256_set1_epi8(32);
  for (std::size_t i = 0; i < n; ++i, b += 210) {
    const float d = half_at(b + 208);
    float ds[16];
    for (int k = 0; k < 16; ++k)
      ds[k] = d * static_cast<float>(static_cast<std::int8_t>(b[192 + k]));
    const u8* ql = b;
    const u8* qh = b + 128;
    for (int half = 0; half < 2; ++half, ql += 64, qh += 32, y += 128) {
      const float* s = ds + 8 * half;
      const __m256i l0 = load32(ql), l1 = load32(ql + 32), h = load32(qh);
      const __m256i q1 = _mm256_sub_epi8(
          _mm256_or_si256(_mm256_and_si256(l0, m4), _mm256_slli_epi16(_mm256_and_si256(h, m2), 4)),
          off);
      const __m256i q2 = _mm256_sub_epi8(
          _mm256_or_si256(_mm256_and_si256(l1, m4),
                          _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(h, 2), m2), 4)),
          off);
      const __m256i q3 = _mm256_sub_epi8(
          _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l0, 4), m4),
                          _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(h, 4), m2), 4)),
          off);
      const __m256i q4 = _mm256_sub_epi8(
          _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l1, 4), m4),
                          _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(h, 6), m2), 4)),
          off);
      scale32_halves(q1, s[0], s[1], y);
      scale32_halves(q2, s[2], s[3], y + 32);
      scale32_halves(q3, s[4], s[5], y + 64);
      scale32_halves(q4, s[6], s[7], y + 96);
    }
  }
}
}  // namespace

DequantBlocksFn dequant_blocks_avx2(DType type) noexcept {
  switch (type) {
    case DType::q8_0:
      return q8_0;
    case DType::q4_0:
      return q4_0;
    case DType::q4_k:
      return q4_k;
    case DType::q5_k:
      return q5_k;
    case DType::q6_k:
      return q6_k;
    default:
      return nullptr;
  }
}
#else
DequantBlocksFn dequant_blocks_avx2(DType) noexcept {
  return nullptr;
}
#endif

}  // namespace dmem::detail
