// AVX2 + F16C buffer kernels: the same bits as convert_scalar.cpp (float_bits.hpp), 8-16 values
// per step, the tail through the scalar helpers.
#include <cstdint>
#include <cstring>

#include "core/convert_kernels.hpp"
#include "core/float_bits.hpp"

#if DMEM_HAVE_AVX2_KERNELS
#include <immintrin.h>
#endif

namespace dmem::detail {

#if DMEM_HAVE_AVX2_KERNELS
namespace {
using u8 = std::uint8_t;

DMEM_TARGET_AVX2 inline __m256i load8x32(const u8* p) {
  return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
}
DMEM_TARGET_AVX2 inline void store8x32(u8* p, __m256i v) {
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(p), v);
}

template <class In, class Out, Out (*Fn)(In) noexcept>
void tail(const u8* s, u8* d, std::size_t from, std::size_t n) {
  for (std::size_t i = from; i < n; ++i) {
    In x;
    std::memcpy(&x, s + i * sizeof(In), sizeof(In));
    const Out y = Fn(x);
    std::memcpy(d + i * sizeof(Out), &y, sizeof(Out));
  }
}

DMEM_TARGET_AVX2 void bf16_to_f32(const void* src, void* dst, std::size_t n) noexcept {
  const auto* s = static_cast<const u8*>(src);
  auto* d = static_cast<u8*>(dst);
  const __m256i zero = _mm256_setzero_si256();
  std::size_t i = 0;
  for (; i + 16 <= n; i += 16) {
    const __m256i v = load8x32(s + 2 * i);
    // bf16 is the top half of an f32: interleave with zeros, then put the lanes back in order.
    const __m256i lo = _mm256_unpacklo_epi16(zero, v);  // values 0-3 | 8-11
    const __m256i hi = _mm256_unpackhi_epi16(zero, v);  // values 4-7 | 12-15
    store8x32(d + 4 * i, _mm256_permute2x128_si256(lo, hi, 0x20));
    store8x32(d + 4 * i + 32, _mm256_permute2x128_si256(lo, hi, 0x31));
  }
  tail<std::uint16_t, std::uint32_t, bf16_to_f32_bits>(s, d, i, n);
}

DMEM_TARGET_AVX2 void f16_to_f32(const void* src, void* dst, std::size_t n) noexcept {
  const auto* s = static_cast<const u8*>(src);
  auto* d = static_cast<u8*>(dst);
  std::size_t i = 0;
  for (; i + 16 <= n; i += 16) {
    const __m256i v = load8x32(s + 2 * i);
    store8x32(d + 4 * i, _mm256_castps_si256(_mm256_cvtph_ps(_mm256_castsi256_si128(v))));
    store8x32(d + 4 * i + 32, _mm256_castps_si256(_mm256_cvtph_ps(_mm256_extracti128_si256(v, 1))));
  }
  tail<std::uint16_t, std::uint32_t, f16_to_f32_bits>(s, d, i, n);
}

template <const std::array<std::uint32_t, 256>& Table>
DMEM_TARGET_AVX2 void byte_table(const void* src, void* dst, std::size_t n) noexcept {
  const auto* s = static_cast<const u8*>(src);
  auto* d = static_cast<u8*>(dst);
  const auto* table = reinterpret_cast<const int*>(Table.data());
  std::size_t i = 0;
  for (; i + 16 <= n; i += 16) {
    const __m128i b = _mm_loadu_si128(reinterpret_cast<const __m128i*>(s + i));
    const __m256i i0 = _mm256_cvtepu8_epi32(b);
    const __m256i i1 = _mm256_cvtepu8_epi32(_mm_srli_si128(b, 8));
    store8x32(d + 4 * i, _mm256_i32gather_epi32(table, i0, 4));
    store8x32(d + 4 * i + 32, _mm256_i32gather_epi32(table, i1, 4));
  }
  for (; i < n; ++i) std::memcpy(d + 4 * i, &Table[s[i]], 4);
}

// Round-to-nearest-even of 8 f32 to bf16 in the low half of each 32-bit lane; NaN lanes give
// 0xFFFF, as f32_to_bf16_bits.
DMEM_TARGET_AVX2 inline __m256i bf16_lanes(__m256i u) {
  const __m256i one = _mm256_set1_epi32(1);
  const __m256i lsb = _mm256_and_si256(_mm256_srli_epi32(u, 16), one);
  const __m256i rounded =
      _mm256_srli_epi32(_mm256_add_epi32(u, _mm256_add_epi32(_mm256_set1_epi32(0x7FFF), lsb)), 16);
  const __m256i abs = _mm256_and_si256(u, _mm256_set1_epi32(0x7FFFFFFF));
  const __m256i nan = _mm256_cmpgt_epi32(abs, _mm256_set1_epi32(0x7F800000));
  return _mm256_or_si256(rounded, _mm256_and_si256(nan, _mm256_set1_epi32(0xFFFF)));
}

DMEM_TARGET_AVX2 void f32_to_bf16(const void* src, void* dst, std::size_t n) noexcept {
  const auto* s = static_cast<const u8*>(src);
  auto* d = static_cast<u8*>(dst);
  std::size_t i = 0;
  for (; i + 16 <= n; i += 16) {
    const __m256i a = bf16_lanes(load8x32(s + 4 * i));
    const __m256i b = bf16_lanes(load8x32(s + 4 * i + 32));
    // packus works per 128-bit lane: a0-3 b0-3 | a4-7 b4-7; the permute restores the order.
    store8x32(d + 2 * i, _mm256_permute4x64_epi64(_mm256_packus_epi32(a, b), 0xD8));
  }
  tail<std::uint32_t, std::uint16_t, f32_to_bf16_bits>(s, d, i, n);
}

DMEM_TARGET_AVX2 void f32_to_f16(const void* src, void* dst, std::size_t n) noexcept {
  const auto* s = static_cast<const u8*>(src);
  auto* d = static_cast<u8*>(dst);
  std::size_t i = 0;
  for (; i + 16 <= n; i += 16) {
    // vcvtps2ph with an immediate rounding mode ignores MXCSR: nearest even, NaN as
    // f32_to_f16_bits.
    const __m128i a = _mm256_cvtps_ph(_mm256_loadu_ps(reinterpret_cast<const float*>(s + 4 * i)),
                                      _MM_FROUND_TO_NEAREST_INT);
    const __m128i b = _mm256_cvtps_ph(
        _mm256_loadu_ps(reinterpret_cast<const float*>(s + 4 * i + 32)), _MM_FROUND_TO_NEAREST_INT);
    store8x32(d + 2 * i, _mm256_set_m128i(b, a));
  }
  tail<std::uint32_t, std::uint16_t, f32_to_f16_bits>(s, d, i, n);
}

// f32 -> fp8 e4m3 codes (one per 32-bit lane): f32_to_f8_e4m3_bits's steps, 8 lanes at a time.
DMEM_TARGET_AVX2 inline __m256i e4m3_lanes(__m256 x) {
  const __m256i u = _mm256_castps_si256(x);
  const __m256i abs = _mm256_and_si256(u, _mm256_set1_epi32(0x7FFFFFFF));
  const __m256i sign = _mm256_and_si256(_mm256_srli_epi32(u, 24), _mm256_set1_epi32(0x80));
  // Normal codes: round the f32 mantissa to 3 bits (nearest even) and rebias the exponent
  // (127 -> 7); the carry of a round-up moves into the exponent as it should.
  const __m256i lsb = _mm256_and_si256(_mm256_srli_epi32(abs, 20), _mm256_set1_epi32(1));
  const __m256i rounded = _mm256_add_epi32(abs, _mm256_add_epi32(_mm256_set1_epi32(0x7FFFF), lsb));
  const __m256i normal =
      _mm256_sub_epi32(_mm256_srli_epi32(rounded, 20), _mm256_set1_epi32(120 << 3));
  // Below 2^-6 the codes are multiples of 2^-9: adding 2^14 (whose ulp is 2^-9) rounds to
  // nearest even in the FPU, and the mantissa bits of the sum are the code.
  const __m256 shifted = _mm256_add_ps(_mm256_castsi256_ps(abs), _mm256_set1_ps(16384.0f));
  const __m256i subnormal =
      _mm256_sub_epi32(_mm256_castps_si256(shifted), _mm256_set1_epi32(0x46800000));
  const __m256i small = _mm256_cmpgt_epi32(_mm256_set1_epi32(0x3C800000), abs);  // < 2^-6
  __m256i code = _mm256_blendv_epi8(normal, subnormal, small);
  const __m256i big = _mm256_cmpgt_epi32(abs, _mm256_set1_epi32(0x43DFFFFF));  // >= 448
  code = _mm256_blendv_epi8(code, _mm256_set1_epi32(0x7E), big);
  const __m256i nan = _mm256_cmpgt_epi32(abs, _mm256_set1_epi32(0x7F800000));
  code = _mm256_blendv_epi8(code, _mm256_set1_epi32(0x7F), nan);
  return _mm256_or_si256(code, sign);
}

// Four vectors of codes (0-255 per lane) -> 32 bytes in order.
DMEM_TARGET_AVX2 inline void store_e4m3(u8* d, __m256i a, __m256i b, __m256i c, __m256i e) {
  // packus works per 128-bit lane: bytes come out as a0-3 b0-3 c0-3 e0-3 | a4-7 b4-7 c4-7 e4-7.
  const __m256i words = _mm256_packus_epi16(_mm256_packus_epi32(a, b), _mm256_packus_epi32(c, e));
  store8x32(d, _mm256_permutevar8x32_epi32(words, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7)));
}

template <class In, std::uint32_t (*Widen)(In) noexcept>
void e4m3_tail(const u8* s, u8* d, std::size_t from, std::size_t n) {
  for (std::size_t i = from; i < n; ++i) {
    In x;
    std::memcpy(&x, s + i * sizeof(In), sizeof(In));
    d[i] = f32_to_f8_e4m3_bits(Widen(x));
  }
}
inline std::uint32_t same_bits(std::uint32_t x) noexcept {
  return x;
}

// Lambdas do not take the function's target attribute: loads are helpers of their own.
DMEM_TARGET_AVX2 inline __m256 f32_at(const u8* s, std::size_t i) {
  return _mm256_loadu_ps(reinterpret_cast<const float*>(s + 4 * i));
}
DMEM_TARGET_AVX2 inline __m256 f16_at(const u8* s, std::size_t i) {
  return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(s + 2 * i)));
}

DMEM_TARGET_AVX2 void f32_to_f8_e4m3_avx2(const void* src, void* dst, std::size_t n) noexcept {
  const auto* s = static_cast<const u8*>(src);
  auto* d = static_cast<u8*>(dst);
  std::size_t i = 0;
  for (; i + 32 <= n; i += 32) {
    store_e4m3(d + i, e4m3_lanes(f32_at(s, i)), e4m3_lanes(f32_at(s, i + 8)),
               e4m3_lanes(f32_at(s, i + 16)), e4m3_lanes(f32_at(s, i + 24)));
  }
  e4m3_tail<std::uint32_t, same_bits>(s, d, i, n);
}

// 16 bf16 -> two vectors of 8 f32, in order.
DMEM_TARGET_AVX2 inline void widen_bf16(const u8* p, __m256& lo, __m256& hi) {
  const __m256i v = load8x32(p);
  const __m256i zero = _mm256_setzero_si256();
  const __m256i a = _mm256_unpacklo_epi16(zero, v);  // values 0-3 | 8-11
  const __m256i b = _mm256_unpackhi_epi16(zero, v);  // values 4-7 | 12-15
  lo = _mm256_castsi256_ps(_mm256_permute2x128_si256(a, b, 0x20));
  hi = _mm256_castsi256_ps(_mm256_permute2x128_si256(a, b, 0x31));
}

DMEM_TARGET_AVX2 void bf16_to_f8_e4m3(const void* src, void* dst, std::size_t n) noexcept {
  const auto* s = static_cast<const u8*>(src);
  auto* d = static_cast<u8*>(dst);
  std::size_t i = 0;
  for (; i + 32 <= n; i += 32) {
    __m256 a, b, c, e;
    widen_bf16(s + 2 * i, a, b);
    widen_bf16(s + 2 * i + 32, c, e);
    store_e4m3(d + i, e4m3_lanes(a), e4m3_lanes(b), e4m3_lanes(c), e4m3_lanes(e));
  }
  e4m3_tail<std::uint16_t, bf16_to_f32_bits>(s, d, i, n);
}

DMEM_TARGET_AVX2 void f16_to_f8_e4m3(const void* src, void* dst, std::size_t n) noexcept {
  const auto* s = static_cast<const u8*>(src);
  auto* d = static_cast<u8*>(dst);
  std::size_t i = 0;
  for (; i + 32 <= n; i += 32) {
    store_e4m3(d + i, e4m3_lanes(f16_at(s, i)), e4m3_lanes(f16_at(s, i + 8)),
               e4m3_lanes(f16_at(s, i + 16)), e4m3_lanes(f16_at(s, i + 24)));
  }
  e4m3_tail<std::uint16_t, f16_to_f32_bits>(s, d, i, n);
}

constexpr ConvertKernels kAvx2{
    bf16_to_f32,    f16_to_f32, byte_table<kF8E4m3ToF32>, byte_table<kF8E5m2ToF32>,
    f32_to_bf16,    f32_to_f16, f32_to_f8_e4m3_avx2,      bf16_to_f8_e4m3,
    f16_to_f8_e4m3,
};
}  // namespace

const ConvertKernels* convert_kernels_avx2() noexcept {
  return &kAvx2;
}
#else
const ConvertKernels* convert_kernels_avx2() noexcept {
  return nullptr;
}
#endif

}  // namespace dmem::detail
