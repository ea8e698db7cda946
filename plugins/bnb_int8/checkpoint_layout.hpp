// bitsandbytes-serialised Linear8bitLt checkpoints (FORMATS.md §4.3): `P.weight` int8 [out, in]
// (row-major CB), `P.SCB` f32 [out], `P.weight_format` u8 scalar (0 = "row"; the only format
// bitsandbytes still loads), `P.bias`. pack_checkpoint() lays those tensors' bytes out as this
// plugin's packed weight, so a loader hands a pre-quantized layer over without requantizing.
#pragma once

#include <cstdint>
#include <cstring>
#include <string>

namespace dmem_bnb {

/// Packed bytes of an [out, in] layer: 4 * out + out * in + 1.
[[nodiscard]] constexpr std::uint64_t packed_bytes(std::uint64_t out, std::uint64_t in) {
  return 4 * out + out * in + 1;
}

/// Copies a checkpoint's `weight` (out * in int8), `SCB` (out f32) and `weight_format` (one u8)
/// into `packed` (packed_bytes(out, in)). Returns an empty string, or why the tensors cannot be
/// used (a format other than row-major).
[[nodiscard]] inline std::string pack_checkpoint(const void* weight, const void* scb,
                                                 std::uint8_t weight_format, std::uint64_t out,
                                                 std::uint64_t in, void* packed) {
  if (weight_format != 0)
    return "weight_format " + std::to_string(weight_format) +
           " is a tiled layout (col32 / col_turing / col_ampere) that bitsandbytes no longer "
           "loads; re-save the layer with a current bitsandbytes (format 0, row)";
  auto* p = static_cast<std::uint8_t*>(packed);
  std::memcpy(p, scb, 4 * out);
  std::memcpy(p + 4 * out, weight, out * in);
  p[4 * out + out * in] = 0;
  return {};
}

}  // namespace dmem_bnb
