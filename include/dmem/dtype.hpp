// Element and block types of checkpoints (safetensors dtypes and GGML block types).
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

#include "dmem/status.hpp"

namespace dmem {
inline namespace v1 {

/// Every storage type dmem knows. Element types store one value in `block_bytes` bytes (or a
/// packed group of sub-byte values); block types (GGML quants) store `block_elems` values in a
/// block of `block_bytes` bytes.
enum class DType : std::uint8_t {
  // element types (safetensors spelling in comments)
  boolean,  // BOOL
  u8,
  i8,  // U8, I8
  u16,
  i16,  // U16, I16
  u32,
  i32,  // U32, I32
  u64,
  i64,  // U64, I64
  f16,
  bf16,  // F16, BF16
  f32,
  f64,          // F32, F64
  c64,          // C64
  f8_e4m3,      // F8_E4M3 (torch float8_e4m3fn)
  f8_e5m2,      // F8_E5M2
  f8_e8m0,      // F8_E8M0 (OCP MX scale)
  f8_e4m3fnuz,  // F8_E4M3FNUZ
  f8_e5m2fnuz,  // F8_E5M2FNUZ
  f4,           // F4 (e2m1, two per byte)
  f6_e2m3,      // F6_E2M3 (four per three bytes)
  f6_e3m2,      // F6_E3M2
  // GGML block types
  q4_0,
  q4_1,
  q5_0,
  q5_1,
  q8_0,
  q8_1,
  q2_k,
  q3_k,
  q4_k,
  q5_k,
  q6_k,
  q8_k,
  iq2_xxs,
  iq2_xs,
  iq3_xxs,
  iq1_s,
  iq4_nl,
  iq3_s,
  iq2_s,
  iq4_xs,
  iq1_m,
  tq1_0,
  tq2_0,
  mxfp4,
  nvfp4,
  q1_0,
  q2_0,
};

inline constexpr std::size_t kDTypeCount = static_cast<std::size_t>(DType::q2_0) + 1;

struct DTypeInfo {
  DType type;
  std::string_view name;              ///< canonical lower-case name ("bf16", "q4_k")
  std::uint32_t block_elems;          ///< values per storage block (1 for whole-byte element types)
  std::uint32_t block_bytes;          ///< bytes per storage block
  bool is_float;                      ///< floating-point values (incl. fp8/fp4/fp6)
  bool is_block_quant;                ///< GGML block-quantized type
  std::int32_t ggml_id;               ///< GGML type id, -1 when GGUF cannot store it
  std::string_view safetensors_name;  ///< "BF16"; empty when safetensors cannot store it
};

[[nodiscard]] const DTypeInfo& dtype_info(DType type) noexcept;
[[nodiscard]] inline std::string_view dtype_name(DType type) noexcept {
  return dtype_info(type).name;
}

/// Look-ups; nullopt for an unknown spelling or id.
[[nodiscard]] std::optional<DType> dtype_from_safetensors(std::string_view name) noexcept;
[[nodiscard]] std::optional<DType> dtype_from_ggml(std::int64_t ggml_id) noexcept;
/// Accepts the canonical name or the safetensors spelling, case-insensitively ("bf16", "BF16").
[[nodiscard]] std::optional<DType> dtype_from_name(std::string_view name) noexcept;

/// Exact byte size of `elements` values, or nullopt when the count is not a whole number of
/// blocks or the arithmetic overflows.
[[nodiscard]] std::optional<std::uint64_t> dtype_bytes(DType type, std::uint64_t elements) noexcept;

// ---- scalar conversions (bit patterns in integers) -------------------------------------------
// Bit for bit PyTorch's CPU casts (Tensor.to; docs/dtypes.md has the details and the goldens).
// f32 -> narrow types round to nearest even. e4m3fn has no infinity: overflow (> 464, which
// rounds past 448) and +-inf saturate to +-448 (0x7E | sign), NaN is 0x7F | sign. e5m2 overflows
// to inf at >= 61440 after rounding; NaN becomes 0x7F | sign. f32 -> f16 keeps a NaN's sign and
// top payload bits, quieted (x86 F16C); f32 -> bf16 makes every NaN 0xFFFF. Widening is exact
// and keeps NaN payloads (f16 NaNs quieted, as F16C; e4m3fn NaN is 0x7FF00000 | sign).

[[nodiscard]] float f16_to_f32(std::uint16_t bits) noexcept;
[[nodiscard]] std::uint16_t f32_to_f16(float value) noexcept;
[[nodiscard]] float bf16_to_f32(std::uint16_t bits) noexcept;
[[nodiscard]] std::uint16_t f32_to_bf16(float value) noexcept;
[[nodiscard]] float f8_e4m3_to_f32(std::uint8_t bits) noexcept;
[[nodiscard]] std::uint8_t f32_to_f8_e4m3(float value) noexcept;
[[nodiscard]] float f8_e5m2_to_f32(std::uint8_t bits) noexcept;
[[nodiscard]] std::uint8_t f32_to_f8_e5m2(float value) noexcept;

/// Convert `count` values between types through f32 (ints saturate and round to nearest even).
/// GGML block types are read with dequantize() and written with ggml's reference quantizer where
/// block_quant.hpp has one (q4_0 q4_1 q5_0 q5_1 q8_0); others give Errc::unsupported.
[[nodiscard]] Status convert(DType from, const void* src, DType to, void* dst,
                             std::size_t count) noexcept;

}  // namespace v1
}  // namespace dmem
