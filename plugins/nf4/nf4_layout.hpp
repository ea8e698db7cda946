// Where the parts of one packed NF4 / FP4 tensor sit in the plugin's stored bytes, and the CPU
// pack / unpack of a whole tensor. f32 parts come first so they stay 4-byte aligned:
//   plain:  absmax f32[blocks] | codes u8[ceil(n/2)]
//   nested: offset f32 | nested absmax f32[ceil(blocks/256)] | absmax codes u8[blocks] | codes
// The 16-entry code table and the 256-entry 8-bit map are constants, not stored.
#pragma once

#include <cstdint>
#include <vector>

#include "bnb4_format.hpp"
#include "core/float_bits.hpp"

namespace dmem_nf4 {

/// Output element types (the plugin ABI's dtype codes for f32, f16, bf16).
enum class OutType : std::uint8_t { f32 = 1, f16 = 2, bf16 = 3 };

struct Layout {
  QuantType type = QuantType::nf4;
  std::uint64_t n = 0;
  std::uint64_t blocksize = 64;
  bool nested = false;
  std::uint64_t blocks = 0, nested_blocks = 0;
  std::uint64_t absmax_at = 0, offset_at = 0, nested_at = 0, qabsmax_at = 0, codes_at = 0;
  std::uint64_t bytes = 0;
};

inline Layout make_layout(QuantType type, std::uint64_t n, std::uint64_t blocksize, bool nested) {
  Layout l;
  l.type = type;
  l.n = n;
  l.blocksize = blocksize;
  l.nested = nested;
  l.blocks = block_count(n, blocksize);
  if (nested) {
    l.nested_blocks = block_count(l.blocks, kNestedBlock);
    l.offset_at = 0;
    l.nested_at = 4;
    l.qabsmax_at = l.nested_at + 4 * l.nested_blocks;
    l.codes_at = l.qabsmax_at + l.blocks;
  } else {
    l.absmax_at = 0;
    l.codes_at = 4 * l.blocks;
  }
  l.bytes = l.codes_at + (n + 1) / 2;
  return l;
}

/// The f32 absmax of every block (decoded from the 8-bit codes when nested).
inline std::vector<float> block_absmax(const Layout& l, const std::uint8_t* base) {
  std::vector<float> a(l.blocks);
  if (!l.nested) {
    std::memcpy(a.data(), base + l.absmax_at, 4 * l.blocks);
    return a;
  }
  std::array<float, 256> map{};
  for (unsigned i = 0; i < 256; ++i) map[i] = dynamic_value(i);
  float offset = 0.0f;
  std::memcpy(&offset, base + l.offset_at, 4);
  std::vector<float> nested(l.nested_blocks);
  std::memcpy(nested.data(), base + l.nested_at, 4 * l.nested_blocks);
  for (std::uint64_t b = 0; b < l.blocks; ++b)
    a[b] = nested_absmax(map.data(), base + l.qabsmax_at, nested.data(), offset, b);
  return a;
}

/// Packs n elements read through load(i) (as f32) into `base` (l.bytes long).
template <class Load>
void pack(const Layout& l, Load load, std::uint8_t* base) {
  std::vector<float> absmax(l.blocks);
  quantize_4bit(l.type, load, l.n, l.blocksize, base + l.codes_at, absmax.data());
  if (!l.nested) {
    std::memcpy(base + l.absmax_at, absmax.data(), 4 * l.blocks);
    return;
  }
  // bnb: offset = absmax.mean(); the 8-bit codes quantize absmax - offset in blocks of 256.
  const float offset = torch_sum(absmax.data(), l.blocks) / static_cast<float>(l.blocks);
  for (float& a : absmax) a -= offset;
  std::vector<float> nested(l.nested_blocks);
  quantize_8bit(absmax.data(), l.blocks, base + l.qabsmax_at, nested.data());
  std::memcpy(base + l.offset_at, &offset, 4);
  std::memcpy(base + l.nested_at, nested.data(), 4 * l.nested_blocks);
}

inline std::uint16_t to_half_bits(OutType t, float v) noexcept {
  const auto u = std::bit_cast<std::uint32_t>(v);
  return t == OutType::bf16 ? dmem::detail::f32_to_bf16_bits(u) : dmem::detail::f32_to_f16_bits(u);
}

/// Unpacks elements [0, n) into `out` (f32, f16 or bf16): code * absmax in f32, rounded to
/// nearest even. Per block the 16 possible outputs are computed once and looked up per nibble.
inline void unpack(const Layout& l, const std::uint8_t* base, OutType t, void* out) {
  const std::vector<float> absmax = block_absmax(l, base);
  const std::uint8_t* codes = base + l.codes_at;
  for (std::uint64_t b = 0; b < l.blocks; ++b) {
    const std::uint64_t start = b * l.blocksize, end = std::min(l.n, start + l.blocksize);
    std::array<float, 16> f{};
    std::array<std::uint16_t, 16> h{};
    for (unsigned c = 0; c < 16; ++c) {
      f[c] = code_value(l.type, c) * absmax[b];
      h[c] = to_half_bits(t, f[c]);
    }
    // Blocks hold an even number of elements, so every block starts on a byte.
    const std::uint64_t pairs = (end - start) / 2;
    const std::uint8_t* in = codes + start / 2;
    if (t == OutType::f32) {
      float* o = static_cast<float*>(out) + start;
      for (std::uint64_t j = 0; j < pairs; ++j) {
        o[2 * j] = f[in[j] >> 4];
        o[2 * j + 1] = f[in[j] & 15u];
      }
      if ((end - start) % 2) o[end - start - 1] = f[in[pairs] >> 4];
    } else {
      std::uint16_t* o = static_cast<std::uint16_t*>(out) + start;
      for (std::uint64_t j = 0; j < pairs; ++j) {
        o[2 * j] = h[in[j] >> 4];
        o[2 * j + 1] = h[in[j] & 15u];
      }
      if ((end - start) % 2) o[end - start - 1] = h[in[pairs] >> 4];
    }
  }
}

}  // namespace dmem_nf4
