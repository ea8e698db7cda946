// How a quantizer plugin's packed tensor becomes the tensors its ecosystem's checkpoints hold:
// bitsandbytes Linear4bit / Linear8bitLt keys (FORMATS.md §3.5, §4.3), fp8 with a scale tensor,
// GGUF block types. The packed layouts are the ones each plugin's README documents.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "dmem/convert.hpp"
#include "dmem/quantizer_instance.hpp"
#include "dmem/tensor.hpp"

namespace dmem::detail {

/// The checkpoint family a quantizer writes.
enum class PartKind : std::uint8_t { bnb4, bnb4_nested, bnb_int8, fp8_scaled, gguf };

/// One output tensor: a slice of the packed bytes, or constant bytes (code tables, JSON).
struct OutPart {
  std::string name;
  DType dtype = DType::u8;
  std::vector<std::uint64_t> shape;
  std::uint64_t nbytes = 0;
  bool constant = false;
  std::uint64_t packed_offset = 0;  ///< where the slice starts in the packed bytes
  std::string bytes;                ///< constant bytes
};

/// Tables a bitsandbytes checkpoint repeats with every 4-bit weight, taken from the plugin.
struct Bnb4Tables {
  std::string quant_map;         ///< 16 f32 (the code table), little-endian bytes
  std::string nested_quant_map;  ///< 256 f32 (the 8-bit dynamic map), nested only
};

/// The family of `choice`, or Errc::unsupported for a plugin convert cannot lay out.
[[nodiscard]] Result<PartKind> part_kind(const QuantChoice& choice) noexcept;
/// True when the family is stored in GGUF files (false: safetensors).
[[nodiscard]] bool part_kind_is_gguf(PartKind kind) noexcept;

/// Reads the code table (and the nested map) from the nf4 plugin itself by dequantizing packed
/// bytes made for the purpose, so the checkpoint holds exactly the values the plugin decodes with.
[[nodiscard]] Result<Bnb4Tables> bnb4_tables(const QuantizerInstance& q, bool nested) noexcept;

/// True when the parts need the packed bytes to be known (the nested offset in the JSON).
[[nodiscard]] constexpr bool parts_need_data(PartKind kind) noexcept {
  return kind == PartKind::bnb4_nested;
}

/// The output tensors for source tensor `t` quantized from dtype `input` into `packed_bytes`.
/// `blocksize` and the quant type come from the choice's parameters; `packed` may be null unless
/// parts_need_data(kind).
[[nodiscard]] Result<std::vector<OutPart>> checkpoint_parts(
    PartKind kind, const QuantChoice& choice, const Bnb4Tables& tables, const TensorInfo& t,
    DType input, std::uint64_t packed_bytes, const unsigned char* packed) noexcept;

/// Python's repr() of a float (shortest round trip; fixed notation for exponents -4…15), as
/// json.dumps writes it.
[[nodiscard]] std::string python_float_repr(double v);

}  // namespace dmem::detail
