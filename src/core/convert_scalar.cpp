// Portable buffer kernels (and the per-path table). Loads and stores go through memcpy: the
// buffers may be unaligned.
#include <cstdint>
#include <cstring>

#include "core/convert_kernels.hpp"
#include "core/float_bits.hpp"

namespace dmem::detail {

namespace {
using u8 = std::uint8_t;

template <class In, class Out, Out (*Fn)(In) noexcept>
void map(const void* src, void* dst, std::size_t n) noexcept {
  const auto* s = static_cast<const u8*>(src);
  auto* d = static_cast<u8*>(dst);
  for (std::size_t i = 0; i < n; ++i) {
    In x;
    std::memcpy(&x, s + i * sizeof(In), sizeof(In));
    const Out y = Fn(x);
    std::memcpy(d + i * sizeof(Out), &y, sizeof(Out));
  }
}

template <const std::array<std::uint32_t, 256>& Table>
void byte_table(const void* src, void* dst, std::size_t n) noexcept {
  const auto* s = static_cast<const u8*>(src);
  auto* d = static_cast<u8*>(dst);
  for (std::size_t i = 0; i < n; ++i) std::memcpy(d + i * 4, &Table[s[i]], 4);
}

constexpr ConvertKernels kScalar{
    map<std::uint16_t, std::uint32_t, bf16_to_f32_bits>,
    map<std::uint16_t, std::uint32_t, f16_to_f32_bits>,
    byte_table<kF8E4m3ToF32>,
    byte_table<kF8E5m2ToF32>,
    map<std::uint32_t, std::uint16_t, f32_to_bf16_bits>,
    map<std::uint32_t, std::uint16_t, f32_to_f16_bits>,
    map<std::uint32_t, std::uint8_t, f32_to_f8_e4m3_bits>,
    nullptr,
    nullptr,
};
}  // namespace

const ConvertKernels& convert_kernels_scalar() noexcept {
  return kScalar;
}

const ConvertKernels& convert_kernels() noexcept {
  if (cpu_path() == CpuPath::avx2) {
    if (const ConvertKernels* k = convert_kernels_avx2()) return *k;
  }
  return kScalar;
}

}  // namespace dmem::detail
