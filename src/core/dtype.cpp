#include "dmem/dtype.hpp"

#include <vector>

#include "core/convert_kernels.hpp"
#include "core/float_bits.hpp"
#include "dmem/block_quant.hpp"

#include <algorithm>
#include <array>
#include <bit>
#include <cctype>
#include <cmath>
#include <cstring>
#include <limits>
#include <string>

namespace dmem {
inline namespace v1 {

namespace {
using D = DType;
// type, name, block elems, block bytes, float, block quant, ggml id, safetensors name.
// GGML sizes: FORMATS.md §2.5 (ggml.c type_traits, ggml-common.h structs).
constexpr std::array<DTypeInfo, kDTypeCount> kInfo{{
    {D::boolean, "bool", 1, 1, false, false, -1, "BOOL"},
    {D::u8, "u8", 1, 1, false, false, -1, "U8"},
    {D::i8, "i8", 1, 1, false, false, 24, "I8"},
    {D::u16, "u16", 1, 2, false, false, -1, "U16"},
    {D::i16, "i16", 1, 2, false, false, 25, "I16"},
    {D::u32, "u32", 1, 4, false, false, -1, "U32"},
    {D::i32, "i32", 1, 4, false, false, 26, "I32"},
    {D::u64, "u64", 1, 8, false, false, -1, "U64"},
    {D::i64, "i64", 1, 8, false, false, 27, "I64"},
    {D::f16, "f16", 1, 2, true, false, 1, "F16"},
    {D::bf16, "bf16", 1, 2, true, false, 30, "BF16"},
    {D::f32, "f32", 1, 4, true, false, 0, "F32"},
    {D::f64, "f64", 1, 8, true, false, 28, "F64"},
    {D::c64, "c64", 1, 8, true, false, -1, "C64"},
    {D::f8_e4m3, "f8_e4m3", 1, 1, true, false, -1, "F8_E4M3"},
    {D::f8_e5m2, "f8_e5m2", 1, 1, true, false, -1, "F8_E5M2"},
    {D::f8_e8m0, "f8_e8m0", 1, 1, true, false, -1, "F8_E8M0"},
    {D::f8_e4m3fnuz, "f8_e4m3fnuz", 1, 1, true, false, -1, "F8_E4M3FNUZ"},
    {D::f8_e5m2fnuz, "f8_e5m2fnuz", 1, 1, true, false, -1, "F8_E5M2FNUZ"},
    {D::f4, "f4", 2, 1, true, false, -1, "F4"},
    {D::f6_e2m3, "f6_e2m3", 4, 3, true, false, -1, "F6_E2M3"},
    {D::f6_e3m2, "f6_e3m2", 4, 3, true, false, -1, "F6_E3M2"},
    {D::q4_0, "q4_0", 32, 18, false, true, 2, ""},
    {D::q4_1, "q4_1", 32, 20, false, true, 3, ""},
    {D::q5_0, "q5_0", 32, 22, false, true, 6, ""},
    {D::q5_1, "q5_1", 32, 24, false, true, 7, ""},
    {D::q8_0, "q8_0", 32, 34, false, true, 8, ""},
    {D::q8_1, "q8_1", 32, 36, false, true, 9, ""},
    {D::q2_k, "q2_k", 256, 84, false, true, 10, ""},
    {D::q3_k, "q3_k", 256, 110, false, true, 11, ""},
    {D::q4_k, "q4_k", 256, 144, false, true, 12, ""},
    {D::q5_k, "q5_k", 256, 176, false, true, 13, ""},
    {D::q6_k, "q6_k", 256, 210, false, true, 14, ""},
    {D::q8_k, "q8_k", 256, 292, false, true, 15, ""},
    {D::iq2_xxs, "iq2_xxs", 256, 66, false, true, 16, ""},
    {D::iq2_xs, "iq2_xs", 256, 74, false, true, 17, ""},
    {D::iq3_xxs, "iq3_xxs", 256, 98, false, true, 18, ""},
    {D::iq1_s, "iq1_s", 256, 50, false, true, 19, ""},
    {D::iq4_nl, "iq4_nl", 32, 18, false, true, 20, ""},
    {D::iq3_s, "iq3_s", 256, 110, false, true, 21, ""},
    {D::iq2_s, "iq2_s", 256, 82, false, true, 22, ""},
    {D::iq4_xs, "iq4_xs", 256, 136, false, true, 23, ""},
    {D::iq1_m, "iq1_m", 256, 56, false, true, 29, ""},
    {D::tq1_0, "tq1_0", 256, 54, false, true, 34, ""},
    {D::tq2_0, "tq2_0", 256, 66, false, true, 35, ""},
    {D::mxfp4, "mxfp4", 32, 17, false, true, 39, ""},
    {D::nvfp4, "nvfp4", 64, 36, false, true, 40, ""},
    {D::q1_0, "q1_0", 128, 18, false, true, 41, ""},
    {D::q2_0, "q2_0", 64, 18, false, true, 42, ""},
}};

constexpr bool table_in_order() {
  for (std::size_t i = 0; i < kInfo.size(); ++i)
    if (static_cast<std::size_t>(kInfo[i].type) != i) return false;
  return true;
}
static_assert(table_in_order(), "kInfo must list DType values in declaration order");

bool iequal(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i)
    if (std::tolower(static_cast<unsigned char>(a[i])) !=
        std::tolower(static_cast<unsigned char>(b[i])))
      return false;
  return true;
}

}  // namespace

const DTypeInfo& dtype_info(DType type) noexcept {
  auto i = static_cast<std::size_t>(type);
  return kInfo[i < kInfo.size() ? i : static_cast<std::size_t>(DType::u8)];
}

std::optional<DType> dtype_from_safetensors(std::string_view name) noexcept {
  for (const auto& info : kInfo)
    if (!info.safetensors_name.empty() && info.safetensors_name == name) return info.type;
  return std::nullopt;
}

std::optional<DType> dtype_from_ggml(std::int64_t ggml_id) noexcept {
  if (ggml_id < 0) return std::nullopt;
  for (const auto& info : kInfo)
    if (info.ggml_id == ggml_id) return info.type;
  return std::nullopt;
}

std::optional<DType> dtype_from_name(std::string_view name) noexcept {
  for (const auto& info : kInfo)
    if (iequal(info.name, name) ||
        (!info.safetensors_name.empty() && iequal(info.safetensors_name, name)))
      return info.type;
  if (iequal(name, "float16") || iequal(name, "fp16") || iequal(name, "half")) return DType::f16;
  if (iequal(name, "bfloat16")) return DType::bf16;
  if (iequal(name, "float32") || iequal(name, "fp32") || iequal(name, "float")) return DType::f32;
  if (iequal(name, "float64") || iequal(name, "fp64")) return DType::f64;
  if (iequal(name, "fp8") || iequal(name, "float8_e4m3fn") || iequal(name, "fp8_e4m3"))
    return DType::f8_e4m3;
  if (iequal(name, "float8_e5m2") || iequal(name, "fp8_e5m2")) return DType::f8_e5m2;
  return std::nullopt;
}

std::optional<std::uint64_t> dtype_bytes(DType type, std::uint64_t elements) noexcept {
  const auto& info = dtype_info(type);
  if (elements % info.block_elems != 0) return std::nullopt;
  const std::uint64_t blocks = elements / info.block_elems;
  if (blocks != 0 && info.block_bytes > std::numeric_limits<std::uint64_t>::max() / blocks)
    return std::nullopt;
  return blocks * info.block_bytes;
}

// ---- scalar conversions ----------------------------------------------------------------------

float f16_to_f32(std::uint16_t bits) noexcept {
  return std::bit_cast<float>(detail::f16_to_f32_bits(bits));
}

std::uint16_t f32_to_f16(float value) noexcept {
  return detail::f32_to_f16_bits(std::bit_cast<std::uint32_t>(value));
}

float bf16_to_f32(std::uint16_t bits) noexcept {
  return std::bit_cast<float>(detail::bf16_to_f32_bits(bits));
}

std::uint16_t f32_to_bf16(float value) noexcept {
  return detail::f32_to_bf16_bits(std::bit_cast<std::uint32_t>(value));
}

float f8_e4m3_to_f32(std::uint8_t bits) noexcept {
  return std::bit_cast<float>(detail::kF8E4m3ToF32[bits]);
}

std::uint8_t f32_to_f8_e4m3(float value) noexcept {
  return detail::f32_to_f8_e4m3_bits(std::bit_cast<std::uint32_t>(value));
}

float f8_e5m2_to_f32(std::uint8_t bits) noexcept {
  return std::bit_cast<float>(detail::kF8E5m2ToF32[bits]);
}

std::uint8_t f32_to_f8_e5m2(float value) noexcept {
  return detail::f32_to_f8_e5m2_bits(std::bit_cast<std::uint32_t>(value));
}

// ---- buffer conversion -----------------------------------------------------------------------

namespace {
template <class T>
T load(const void* base, std::size_t i) {
  T v;
  std::memcpy(&v, static_cast<const unsigned char*>(base) + i * sizeof(T), sizeof(T));
  return v;
}
template <class T>
void store(void* base, std::size_t i, T v) {
  std::memcpy(static_cast<unsigned char*>(base) + i * sizeof(T), &v, sizeof(T));
}

bool readable(DType t) {
  switch (t) {
    case D::boolean:
    case D::u8:
    case D::i8:
    case D::u16:
    case D::i16:
    case D::u32:
    case D::i32:
    case D::u64:
    case D::i64:
    case D::f16:
    case D::bf16:
    case D::f32:
    case D::f64:
    case D::f8_e4m3:
    case D::f8_e5m2:
      return true;
    default:
      return false;
  }
}

double get(DType t, const void* p, std::size_t i) {
  switch (t) {
    case D::boolean:
      return load<std::uint8_t>(p, i) != 0 ? 1.0 : 0.0;
    case D::u8:
      return load<std::uint8_t>(p, i);
    case D::i8:
      return load<std::int8_t>(p, i);
    case D::u16:
      return load<std::uint16_t>(p, i);
    case D::i16:
      return load<std::int16_t>(p, i);
    case D::u32:
      return load<std::uint32_t>(p, i);
    case D::i32:
      return load<std::int32_t>(p, i);
    case D::u64:
      return static_cast<double>(load<std::uint64_t>(p, i));
    case D::i64:
      return static_cast<double>(load<std::int64_t>(p, i));
    case D::f16:
      return f16_to_f32(load<std::uint16_t>(p, i));
    case D::bf16:
      return bf16_to_f32(load<std::uint16_t>(p, i));
    case D::f32:
      return load<float>(p, i);
    case D::f64:
      return load<double>(p, i);
    case D::f8_e4m3:
      return f8_e4m3_to_f32(load<std::uint8_t>(p, i));
    case D::f8_e5m2:
      return f8_e5m2_to_f32(load<std::uint8_t>(p, i));
    default:
      return 0.0;
  }
}

template <class I>
I saturate(double v) {
  if (std::isnan(v)) return 0;
  const double r = std::nearbyint(v);
  if (r <= static_cast<double>(std::numeric_limits<I>::min())) return std::numeric_limits<I>::min();
  if (r >= static_cast<double>(std::numeric_limits<I>::max())) return std::numeric_limits<I>::max();
  return static_cast<I>(r);
}

void put(DType t, void* p, std::size_t i, double v) {
  const auto f = static_cast<float>(v);
  switch (t) {
    case D::boolean:
      store<std::uint8_t>(p, i, v != 0.0 ? 1 : 0);
      break;
    case D::u8:
      store(p, i, saturate<std::uint8_t>(v));
      break;
    case D::i8:
      store(p, i, saturate<std::int8_t>(v));
      break;
    case D::u16:
      store(p, i, saturate<std::uint16_t>(v));
      break;
    case D::i16:
      store(p, i, saturate<std::int16_t>(v));
      break;
    case D::u32:
      store(p, i, saturate<std::uint32_t>(v));
      break;
    case D::i32:
      store(p, i, saturate<std::int32_t>(v));
      break;
    case D::u64:
      store(p, i, saturate<std::uint64_t>(v));
      break;
    case D::i64:
      store(p, i, saturate<std::int64_t>(v));
      break;
    case D::f16:
      store(p, i, f32_to_f16(f));
      break;
    case D::bf16:
      store(p, i, f32_to_bf16(f));
      break;
    case D::f32:
      store(p, i, f);
      break;
    case D::f64:
      store(p, i, v);
      break;
    case D::f8_e4m3:
      store(p, i, f32_to_f8_e4m3(f));
      break;
    case D::f8_e5m2:
      store(p, i, f32_to_f8_e5m2(f));
      break;
    default:
      break;
  }
}

// The kernel for one side of a conversion through f32; nullptr when there is none.
detail::ConvertFn widen_fn(const detail::ConvertKernels& k, DType from) {
  switch (from) {
    case D::bf16:
      return k.bf16_to_f32;
    case D::f16:
      return k.f16_to_f32;
    case D::f8_e4m3:
      return k.f8_e4m3_to_f32;
    case D::f8_e5m2:
      return k.f8_e5m2_to_f32;
    default:
      return nullptr;
  }
}

template <std::uint8_t (*Fn)(float) noexcept>
void narrow_f8(const void* src, void* dst, std::size_t n) noexcept {
  const auto* s = static_cast<const unsigned char*>(src);
  auto* d = static_cast<unsigned char*>(dst);
  for (std::size_t i = 0; i < n; ++i) d[i] = Fn(load<float>(s, i));
}

detail::ConvertFn narrow_fn(const detail::ConvertKernels& k, DType to) {
  switch (to) {
    case D::bf16:
      return k.f32_to_bf16;
    case D::f16:
      return k.f32_to_f16;
    case D::f8_e4m3:
      return narrow_f8<f32_to_f8_e4m3>;
    case D::f8_e5m2:
      return narrow_f8<f32_to_f8_e5m2>;
    default:
      return nullptr;
  }
}

// 16-bit float -> fp8 by table: the result is a pure function of the 16 input bits, so one
// 64 KiB table per pair (built from the exact scalar path on first use) is exact and runs at
// memory speed. Layerwise casting at load time converts every castable weight this way.
using F8Table = std::array<std::uint8_t, 65536>;
template <DType From, DType To>
const F8Table& f8_table() noexcept {
  static const F8Table table = [] {
    F8Table t{};
    for (std::uint32_t bits = 0; bits < 65536; ++bits) {
      const auto b = static_cast<std::uint16_t>(bits);
      const float v = From == DType::bf16 ? bf16_to_f32(b) : f16_to_f32(b);
      t[bits] = To == DType::f8_e4m3 ? f32_to_f8_e4m3(v) : f32_to_f8_e5m2(v);
    }
    return t;
  }();
  return table;
}

const F8Table* f8_table_for(DType from, DType to) noexcept {
  if (from == DType::bf16 && to == DType::f8_e4m3) return &f8_table<DType::bf16, DType::f8_e4m3>();
  if (from == DType::bf16 && to == DType::f8_e5m2) return &f8_table<DType::bf16, DType::f8_e5m2>();
  if (from == DType::f16 && to == DType::f8_e4m3) return &f8_table<DType::f16, DType::f8_e4m3>();
  if (from == DType::f16 && to == DType::f8_e5m2) return &f8_table<DType::f16, DType::f8_e5m2>();
  return nullptr;
}

// Values per step when a conversion goes through an f32 scratch buffer on the stack: a multiple
// of every block size, small enough to stay in L1.
constexpr std::size_t kChunk = 1024;
}  // namespace

Status convert(DType from, const void* src, DType to, void* dst, std::size_t count) noexcept {
  const auto& fi = dtype_info(from);
  const auto& ti = dtype_info(to);
  // Block types go through f32 with ggml's (de)quantizers.
  if (fi.is_block_quant && can_dequantize(from) && (readable(to) || can_quantize(to))) {
    if (to == D::f32 && reinterpret_cast<std::uintptr_t>(dst) % alignof(float) == 0)
      return dequantize(from, src, static_cast<float*>(dst), count);
    if (count % fi.block_elems != 0)  // dequantize() says what is wrong with the count
      return dequantize(from, src, nullptr, count);
    if (!ti.is_block_quant) {
      // Whole blocks through an L1-sized f32 buffer on the stack.
      float tmp[kChunk];
      const auto* s = static_cast<const unsigned char*>(src);
      auto* d = static_cast<unsigned char*>(dst);
      for (std::size_t i = 0; i < count; i += kChunk) {
        const std::size_t n = std::min(kChunk, count - i);
        DMEM_TRY(dequantize(from, s + i / fi.block_elems * fi.block_bytes, tmp, n));
        DMEM_TRY(convert(D::f32, tmp, to, d + i * ti.block_bytes, n));
      }
      return Status::ok();
    }
    std::vector<float> tmp(count);
    DMEM_TRY(dequantize(from, src, tmp.data(), count));
    return convert(DType::f32, tmp.data(), to, dst, count);
  }
  if (ti.is_block_quant && can_quantize(to) && readable(from)) {
    std::vector<float> tmp(count);
    DMEM_TRY(convert(from, src, DType::f32, tmp.data(), count));
    return quantize(to, tmp.data(), dst, count);
  }
  if (!readable(from) || !readable(to)) {
    return Status(Errc::unsupported, "no element conversion from " + std::string(dtype_name(from)) +
                                         " to " + std::string(dtype_name(to)))
        .with_hint(
            "k-quant encoding, IQ types and packed fp4/fp6 are converted by their quantizer "
            "plugin");
  }
  if (count != 0 && (src == nullptr || dst == nullptr))
    return Status(Errc::invalid_argument, "convert: null buffer");
  if (from == to) {
    std::memmove(dst, src, count * fi.block_bytes);
    return Status::ok();
  }
  // Narrow floats to and from f32 run the vectorised kernels; between two narrow floats the
  // values go through f32 in L1-sized steps (exact: f32 holds every narrow value, and the one
  // rounding is the narrowing, as in PyTorch's casts).
  const auto& k = detail::convert_kernels();
  const detail::ConvertFn widen = from == D::f32 ? nullptr : widen_fn(k, from);
  const detail::ConvertFn narrow = to == D::f32 ? nullptr : narrow_fn(k, to);
  if (to == D::f32 && widen) {
    widen(src, dst, count);
    return Status::ok();
  }
  if (to == D::f8_e4m3) {
    const detail::ConvertFn direct = from == D::f32    ? k.f32_to_f8_e4m3
                                     : from == D::bf16 ? k.bf16_to_f8_e4m3
                                     : from == D::f16  ? k.f16_to_f8_e4m3
                                                       : nullptr;
    if (direct != nullptr) {
      direct(src, dst, count);
      return Status::ok();
    }
  }
  if (from == D::f32 && narrow) {
    narrow(src, dst, count);
    return Status::ok();
  }
  if (const F8Table* table = f8_table_for(from, to); table != nullptr) {
    const auto* s = static_cast<const unsigned char*>(src);
    auto* d = static_cast<unsigned char*>(dst);
    for (std::size_t i = 0; i < count; ++i) d[i] = (*table)[load<std::uint16_t>(s, i)];
    return Status::ok();
  }
  if (widen && narrow) {
    float tmp[kChunk];
    const auto* s = static_cast<const unsigned char*>(src);
    auto* d = static_cast<unsigned char*>(dst);
    for (std::size_t i = 0; i < count; i += kChunk) {
      const std::size_t n = std::min(kChunk, count - i);
      widen(s + i * fi.block_bytes, tmp, n);
      narrow(tmp, d + i * ti.block_bytes, n);
    }
    return Status::ok();
  }
  // f64 goes through double so it is exact; every narrower float goes through f32 first, which
  // is exact for them and gives the single rounding step PyTorch's casts perform.
  const bool via_double = from == D::f64 || to == D::f64 || !fi.is_float || !ti.is_float;
  for (std::size_t i = 0; i < count; ++i) {
    const double v = get(from, src, i);
    put(to, dst, i, via_double ? v : static_cast<double>(static_cast<float>(v)));
  }
  return Status::ok();
}

}  // namespace v1
}  // namespace dmem
