// Internal GGUF facts shared by the reader and the writer (FORMATS.md §2.1–2.5).
#pragma once

#include <cstdint>
#include <string_view>

#include "dmem/checkpoint.hpp"

namespace dmem::detail {

inline constexpr std::uint32_t kGgufMagic = 0x46554747;  // "GGUF" read as little-endian u32
inline constexpr std::uint32_t kGgufVersion = 3;
inline constexpr std::uint32_t kGgufDefaultAlignment = 32;
/// Our cap on general.alignment (ggml has none): a larger value only wastes file space and lets
/// a tiny file claim a huge padded data section.
inline constexpr std::uint32_t kGgufMaxAlignment = 1u << 20;
/// ggml's GGML_MAX_NAME: a tensor name holds at most 63 bytes.
inline constexpr std::uint64_t kGgufMaxName = 64;
/// ggml's GGML_MAX_DIMS.
inline constexpr std::uint32_t kGgufMaxDims = 4;
/// Budget for decoded metadata (keys, values, array elements as held in memory). Real files,
/// tokenizers included, take a few tens of MiB; the budget keeps a crafted array of bytes (each
/// decoded to 8) from costing gigabytes.
inline constexpr std::uint64_t kGgufMaxMetadataBytes = 256ull << 20;
inline constexpr std::string_view kGgufAlignmentKey = "general.alignment";

/// Bytes of one scalar of a metadata type; 0 for string, array and unknown ids.
[[nodiscard]] constexpr std::uint64_t gguf_scalar_size(std::uint32_t type) noexcept {
  switch (type) {
    case 0:
    case 1:
    case 7:
      return 1;  // u8 i8 bool
    case 2:
    case 3:
      return 2;  // u16 i16
    case 4:
    case 5:
    case 6:
      return 4;  // u32 i32 f32
    case 10:
    case 11:
    case 12:
      return 8;  // u64 i64 f64
    default:
      return 0;
  }
}

/// Upper-case GGUF spelling of a metadata type ("UINT32"), "unknown" for other ids.
[[nodiscard]] std::string_view gguf_type_name(std::uint32_t type) noexcept;

/// The name of a ggml type id that GGML removed from GGUF files (4, 5, 31–33, 36–38), empty for
/// any other id.
[[nodiscard]] std::string_view gguf_removed_type_name(std::int64_t ggml_id) noexcept;

/// Round `x` up to a multiple of the power of two `align`; false when that overflows.
[[nodiscard]] constexpr bool gguf_pad(std::uint64_t x, std::uint64_t align,
                                      std::uint64_t& out) noexcept {
  const std::uint64_t add = align - 1;
  if (x > UINT64_MAX - add) return false;
  out = (x + add) & ~add;
  return true;
}

}  // namespace dmem::detail
