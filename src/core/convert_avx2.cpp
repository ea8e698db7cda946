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

constexpr ConvertKernels kAvx2{
    bf16_to_f32, f16_to_f32, byte_table<kF8E4m3ToF32>, byte_table<kF8E5m2ToF32>,
    f32_to_bf16, f32_to_f16,
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
