// The bitsandbytes 4-bit format (NF4 / FP4, optional double quantization), written from the
// format facts in reference/FORMATS.md §3 and checked bit for bit against bitsandbytes 0.50.2 on
// the CPU (tests/golden/nf4, scripts/golden/nf4.py). Header-only and free of the plugin ABI, so
// the plugin, its tests and the checkpoint reader share one implementation.
//
// Build with -ffp-contract=off: the reference rounds every product and sum separately, except
// where a comment says it fuses them.
#pragma once

#include <algorithm>
#include <array>
#include <bit>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <type_traits>

namespace dmem_nf4 {

enum class QuantType : std::uint8_t { nf4, fp4 };

/// The 16 NF4 values (bnb get_4bit_type), as f32 bits, in code order.
inline constexpr std::array<std::uint32_t, 16> kNf4Bits = {
    0xBF800000u, 0xBF3239B1u, 0xBF066B30u, 0xBECA32A0u, 0xBE91A24Du, 0xBE3D353Fu,
    0xBDBA7871u, 0x00000000u, 0x3DA2FAFFu, 0x3E24CAE3u, 0x3E7C04DDu, 0x3EAD033Au,
    0x3EE1A4B8u, 0x3F1007ABu, 0x3F3913B3u, 0x3F800000u};
// bnb's FP4 (1 sign, 2 exponent, 1 mantissa bits, not OCP E2M1) divided by its largest value, 12.
inline constexpr std::array<std::uint32_t, 16> kFp4Bits = {
    0x00000000u, 0x3BAAAAABu, 0x3F2AAAABu, 0x3F800000u, 0x3EAAAAABu, 0x3F000000u,
    0x3E2AAAABu, 0x3E800000u, 0x00000000u, 0xBBAAAAABu, 0xBF2AAAABu, 0xBF800000u,
    0xBEAAAAABu, 0xBF000000u, 0xBE2AAAABu, 0xBE800000u};
// FP4 codes in ascending value order, as torch.argsort ordered them for bnb's quantizer (ties:
// +0 code 0 before code 8): a value's bucket in the sorted table maps back through this.
inline constexpr std::array<std::uint8_t, 16> kFp4Order = {11, 10, 13, 12, 15, 14, 9, 0,
                                                           8,  1,  6,  7,  4,  5,  2, 3};

inline float code_value(QuantType t, unsigned code) noexcept {
  return std::bit_cast<float>((t == QuantType::nf4 ? kNf4Bits : kFp4Bits)[code & 15u]);
}

/// The 16 values in ascending order and the 15 midpoints between neighbours, (a + b) / 2 in f32.
struct Buckets {
  std::array<float, 15> bounds{};
  std::array<std::uint8_t, 16> code_of{};  // sorted position -> code
};

inline Buckets make_buckets(QuantType t) noexcept {
  Buckets b;
  std::array<float, 16> sorted{};
  for (unsigned i = 0; i < 16; ++i) {
    b.code_of[i] = t == QuantType::nf4 ? static_cast<std::uint8_t>(i) : kFp4Order[i];
    sorted[i] = code_value(t, b.code_of[i]);
  }
  for (unsigned i = 0; i < 15; ++i) b.bounds[i] = (sorted[i] + sorted[i + 1]) / 2.0f;
  return b;
}

/// torch.bucketize(x, bounds, right=False): how many bounds lie strictly below x.
inline std::uint8_t bucket(const Buckets& b, float x) noexcept {
  unsigned i = 0;
  while (i < 15 && b.bounds[i] < x) ++i;
  return b.code_of[i];
}

/// Number of blocks of `n` elements.
inline std::uint64_t block_count(std::uint64_t n, std::uint64_t blocksize) noexcept {
  return (n + blocksize - 1) / blocksize;
}

/// Quantizes n floats (read through `load(i)`) into packed codes (ceil(n/2) bytes, first element
/// in the high nibble; an odd count is padded with the code of 0) and one f32 absmax per block.
/// As bnb's portable quantize_4bit: whole blocks scale by x * (1 / max(absmax, 1e-38)) and keep
/// the unclamped absmax; the last partial block divides by its clamped absmax and stores that.
template <class Load>
void quantize_4bit(QuantType t, Load load, std::uint64_t n, std::uint64_t blocksize,
                   std::uint8_t* packed, float* absmax) noexcept {
  const Buckets b = make_buckets(t);
  const float tiny = 1e-38f;  // a subnormal: the CPU must not flush it to zero
  const std::uint64_t full = n - n % blocksize;
  const std::uint8_t pad = bucket(b, 0.0f);
  std::uint8_t hi = 0;
  for (std::uint64_t start = 0; start < n; start += blocksize) {
    const std::uint64_t end = std::min(n, start + blocksize);
    float am = 0.0f;
    bool nan = false;
    for (std::uint64_t i = start; i < end; ++i) {
      const float a = std::fabs(load(i));
      nan |= std::isnan(a);
      am = std::max(am, a);
    }
    if (nan) am = std::numeric_limits<float>::quiet_NaN();  // torch's max propagates NaN
    const float clamped = am < tiny ? tiny : am;
    const bool whole = end <= full;
    absmax[start / blocksize] = whole ? am : clamped;
    const float inv = 1.0f / clamped;
    for (std::uint64_t i = start; i < end; ++i) {
      float s = whole ? load(i) * inv : load(i) / clamped;
      s = std::clamp(s, -1.0f, 1.0f);
      const std::uint8_t q = bucket(b, s);
      if (i % 2 == 0)
        hi = q;
      else
        packed[i / 2] = static_cast<std::uint8_t>((hi << 4) | q);
    }
  }
  if (n % 2 == 1) packed[n / 2] = static_cast<std::uint8_t>((hi << 4) | pad);
}

/// The dequantized value of element i: code * absmax of its block, in f32.
inline float dequantize_one(QuantType t, const std::uint8_t* packed, const float* absmax,
                            std::uint64_t i, std::uint64_t blocksize) noexcept {
  const std::uint8_t byte = packed[i / 2];
  const unsigned code = i % 2 == 0 ? byte >> 4 : byte & 15u;
  return code_value(t, code) * absmax[i / blocksize];
}

// ---- double quantization (the absmax values stored as 8-bit codes, blocks of 256) ----------

inline constexpr std::uint64_t kNestedBlock = 256;

/// bnb's signed "dynamic" 8-bit map (create_dynamic_map), as bnb 0.50.2 saves it.
inline constexpr std::array<std::uint32_t, 256> kDynamicMapBits = {
#include "bnb4_dynamic_map.inc"
};

inline float dynamic_value(unsigned q) noexcept {
  return std::bit_cast<float>(kDynamicMapBits[q & 255u]);
}

/// torch's float32 sum of a contiguous vector on x86 (ATen SumKernel cascade_sum, one thread):
/// 8-lane vector accumulators, four of them interleaved, added in levels of 2^k vectors, then the
/// scalar tail and the lanes. bnb's offset is absmax.mean() = this sum / n.
inline float torch_sum(const float* x, std::uint64_t n) noexcept {
  using Vec = std::array<float, 8>;
  auto add = [](Vec& a, const Vec& b) {
    for (int l = 0; l < 8; ++l) a[l] += b[l];
  };
  auto ceil_log2 = [](std::uint64_t v) {
    int r = 0;
    while ((std::uint64_t{1} << r) < v) ++r;
    return r;
  };
  // Rows of four items, four accumulators per level (multi_row_sum).
  auto rows4 = [&](auto item, std::uint64_t rows, auto zero) {
    constexpr int kLevels = 4;
    const int power = std::max(4, ceil_log2(rows) / kLevels);
    const std::uint64_t step = std::uint64_t{1} << power, mask = step - 1;
    using T = decltype(zero);
    std::array<std::array<T, 4>, kLevels> acc;
    for (auto& l : acc) l.fill(zero);
    auto plus = [&](T& a, const T& b) {
      if constexpr (std::is_same_v<T, float>)
        a += b;
      else
        add(a, b);
    };
    std::uint64_t i = 0;
    while (i + step <= rows) {
      for (std::uint64_t j = 0; j < step; ++j, ++i)
        for (int k = 0; k < 4; ++k) plus(acc[0][k], item(4 * i + k));
      for (int j = 1; j < kLevels; ++j) {
        for (int k = 0; k < 4; ++k) {
          plus(acc[j][k], acc[j - 1][k]);
          acc[j - 1][k] = zero;
        }
        if ((i & (mask << (j * power))) != 0) break;
      }
    }
    for (; i < rows; ++i)
      for (int k = 0; k < 4; ++k) plus(acc[0][k], item(4 * i + k));
    for (int j = 1; j < kLevels; ++j)
      for (int k = 0; k < 4; ++k) plus(acc[0][k], acc[j][k]);
    return acc[0];
  };
  if (n < 8) {  // scalar_inner_sum: the same cascade over single floats
    auto p = rows4([&](std::uint64_t i) { return x[i]; }, n / 4, 0.0f);
    for (std::uint64_t i = n / 4 * 4; i < n; ++i) p[0] += x[i];
    for (int k = 1; k < 4; ++k) p[0] += p[k];
    return p[0];
  }
  const std::uint64_t vecs = n / 8;
  auto load = [&](std::uint64_t v) {
    Vec r;
    std::memcpy(r.data(), x + 8 * v, sizeof r);
    return r;
  };
  auto p = rows4(load, vecs / 4, Vec{});
  for (std::uint64_t v = vecs / 4 * 4; v < vecs; ++v) add(p[0], load(v));
  for (int k = 1; k < 4; ++k) add(p[0], p[k]);
  float total = 0.0f;
  for (std::uint64_t i = vecs * 8; i < n; ++i) total += x[i];
  for (int l = 0; l < 8; ++l) total += p[0][l];
  return total;
}

/// bnb 0.50.2's CPU 8-bit blockwise quantizer (quantize_blockwise on the CPU): absmax per block
/// of 256, x * (1 / absmax) clamped to [-1, 1] and mapped to one of 65536 evenly spaced points
/// (index = trunc(fma(65535, (v + 1) / 2, 0.5)), the reference's build fuses that multiply-add),
/// whose code is the first whose midpoint to the next is not below the point. An all-zero block
/// gets code 0.
inline void quantize_8bit(const float* x, std::uint64_t n, std::uint8_t* q,
                          float* absmax) noexcept {
  std::array<float, 255> mid{};
  for (unsigned i = 0; i < 255; ++i) mid[i] = 0.5f * (dynamic_value(i) + dynamic_value(i + 1));
  for (std::uint64_t start = 0; start < n; start += kNestedBlock) {
    const std::uint64_t end = std::min(n, start + kNestedBlock);
    float am = 0.0f;
    for (std::uint64_t i = start; i < end; ++i) am = std::max(am, std::fabs(x[i]));
    absmax[start / kNestedBlock] = am;
    const float inv = 1.0f / am;
    for (std::uint64_t i = start; i < end; ++i) {
      if (am == 0.0f) {
        q[i] = 0;
        continue;
      }
      const float v = std::clamp(x[i] * inv, -1.0f, 1.0f);
      const float pos = std::fma(65535.0f, (v + 1.0f) * 0.5f, 0.5f);
      const int point = std::isnan(pos) ? 0 : static_cast<int>(pos);
      const float at = -1.0f + (2.0f * static_cast<float>(point)) / 65535.0f;
      unsigned c = 0;
      while (c < 255 && mid[c] < at) ++c;
      q[i] = static_cast<std::uint8_t>(c);
    }
  }
}

/// A block's absmax back from its 8-bit code: code * nested absmax, then + offset (two roundings).
inline float nested_absmax(const float* map, const std::uint8_t* qabsmax, const float* nested,
                           float offset, std::uint64_t block) noexcept {
  const float scaled = map[qabsmax[block]] * nested[block / kNestedBlock];
  return scaled + offset;
}

}  // namespace dmem_nf4
