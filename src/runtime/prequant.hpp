// Pre-quantized checkpoints in a Session: linear weights already stored in their ecosystem's keys
// (bitsandbytes 4-bit and int8, fp8 with a scale tensor, GGUF block types) are found from the
// keys and their small state, and their stored bytes are gathered into the packed layout of the
// quantizer plugin that decodes them — the same bytes the plugin would make from the original
// weights (src/convert/checkpoint_parts.hpp is the other direction), so nothing is dequantized
// and quantized again. docs/runtime.md, "Pre-quantized checkpoints".
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "dmem/model.hpp"
#include "dmem/quantizer_instance.hpp"
#include "dmem/status.hpp"
#include "dmem/tensor_source.hpp"

namespace dmem::detail {

/// One byte range of a packed weight: a whole checkpoint tensor, or bytes known at open (a
/// nested absmax offset from the quant-state JSON, fp8 scales widened to f32, a missing
/// weight_format).
struct PackedPiece {
  const TensorInfo* tensor = nullptr;  ///< read from the checkpoint; null: `bytes`
  std::uint64_t at = 0;                ///< offset in the packed bytes
  std::uint64_t nbytes = 0;
  std::string bytes;
};

/// The ecosystems whose keys a Session reads.
enum class PrequantKind : std::uint8_t { bnb4, bnb_int8, fp8_scaled, gguf };

/// One linear weight stored pre-quantized.
struct PrequantWeight {
  PrequantKind kind = PrequantKind::gguf;
  std::string format;  ///< "bnb nf4", "bnb fp4", "bnb int8", "fp8 e4m3 scaled", "gguf q4_k"
  std::string plugin;  ///< the quantizer that decodes it, and its parameters
  std::vector<std::pair<std::string, std::string>> params;
  const TensorInfo* weight = nullptr;  ///< `M.weight` as the checkpoint stores it
  /// `M.weight` as the quantizer sees it: the original dtype and [out, in]; nbytes = packed.
  TensorInfo logical;
  std::vector<const TensorInfo*> state;  ///< the keys folded into it (absmax, SCB, scales …)
  float nested_offset = 0;               ///< bnb 4-bit double quantization (from the JSON)
  std::vector<PackedPiece> pieces;       ///< set by plan_pieces()
  std::uint32_t quantizer = 0;           ///< the session's instance that decodes it
};

/// The pre-quantized weights of `component`, found from its keys; reads each one's small state
/// (quant-state JSON, scales) through `source`. A tensor that only a pre-quantized weight has
/// (absmax, SCB, a quant state) without its weight, a weight without its required state, a
/// quant state that does not parse or disagrees with the weight: format_error, rule
/// `prequant.state`; a variant no plugin decodes (a weight_format other than row, a scale of
/// another shape): unsupported, rule `prequant.format`. Both name the tensor and the fix.
[[nodiscard]] Result<std::vector<PrequantWeight>> find_prequantized(
    const Component& component, const TensorSource& source) noexcept;

/// Lays `w`'s checkpoint tensors out as `q`'s packed bytes (the layout its README documents and
/// `dmem convert` splits): checks each one's dtype and size against it and compares the code
/// tables bitsandbytes repeats with every weight with the plugin's own. Sets `w.pieces` and
/// `w.logical.nbytes`.
[[nodiscard]] Status plan_pieces(PrequantWeight& w, const QuantizerInstance& q,
                                 const TensorSource& source) noexcept;

}  // namespace dmem::detail
