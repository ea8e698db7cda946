// Conversion: writes a model as a pre-quantized checkpoint (bitsandbytes-compatible safetensors,
// fp8 safetensors, or GGUF), one tensor at a time through the quantizer plugins. docs/convert.md.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "dmem/model.hpp"
#include "dmem/status.hpp"

namespace dmem {
inline namespace v1 {

class PluginRegistry;

/// How one component is quantized: a short name ("nf4", "q8_0", …) resolved to a plugin id and
/// its parameters.
struct QuantChoice {
  std::string component;  ///< component name ("transformer"), or "*" for every component
  std::string name;       ///< the short name as given ("nf4-dq")
  std::string plugin;     ///< "dmem.quantizer.nf4"
  std::vector<std::pair<std::string, std::string>> params;
};

/// The short names convert accepts, in the order docs/convert.md lists them.
[[nodiscard]] std::vector<std::string> convert_quantizer_names() noexcept;

/// Resolves one short name: nf4, nf4-dq, fp4, fp4-dq (dmem.quantizer.nf4, block size 64),
/// int8 (dmem.quantizer.bnb_int8), fp8 / fp8-e4m3, fp8-e5m2 (dmem.quantizer.fp8_cast with a
/// per-tensor scale), q8_0 q4_0 q4_1 q5_0 q5_1 q4_k q5_k q6_k (dmem.quantizer.gguf). Rule
/// convert.quantizer for anything else.
[[nodiscard]] Result<QuantChoice> resolve_quantizer(std::string_view name) noexcept;

/// Parses "transformer=nf4,text_encoder=q8_0" (rule convert.quantize on a malformed entry or a
/// component named twice).
[[nodiscard]] Result<std::vector<QuantChoice>> parse_quantize_map(std::string_view spec) noexcept;

enum class ConvertFormat : std::uint8_t {
  safetensors,  ///< bitsandbytes / fp8 keys; GGML block types cannot be stored
  gguf,         ///< GGML block types; bitsandbytes and fp8 layouts cannot be stored
};

/// Where a conversion stands; given to the progress callback after every tensor.
struct ConvertProgress {
  std::string_view component;
  std::string_view tensor;  ///< the tensor just written
  std::uint64_t tensors_done = 0;
  std::uint64_t tensors_total = 0;
  std::uint64_t bytes_done = 0;  ///< source bytes read so far
  std::uint64_t bytes_total = 0;
  double seconds = 0;
  double bytes_per_second = 0;
  double eta_seconds = 0;
};

struct ConvertOptions {
  std::vector<QuantChoice> quantize;    ///< components not listed are copied unchanged
  std::vector<std::string> components;  ///< components to write; empty: all of them
  ConvertFormat format = ConvertFormat::safetensors;
  bool force = false;  ///< replace an existing output file (never a folder)
  /// Called after every tensor; returning false cancels (Errc::io_error, rule convert.cancelled;
  /// nothing is left).
  std::function<bool(const ConvertProgress&)> progress;
  /// Plugins to quantize with; nullptr: a registry of its own, discovered with the defaults.
  const PluginRegistry* plugins = nullptr;
};

struct ConvertedComponent {
  std::string name;
  std::string path;       ///< the file written
  std::string quantizer;  ///< short name, empty when copied unchanged
  std::uint64_t tensors_in = 0;
  std::uint64_t tensors_out = 0;
  std::uint64_t tensors_quantized = 0;  ///< source tensors quantized (the rest kept as they were)
  std::uint64_t bytes_in = 0;           ///< source tensor bytes
  std::uint64_t bytes_out = 0;          ///< file size written
};

struct ConvertResult {
  std::string path;  ///< what open_model() reads the result from (`out`)
  std::vector<ConvertedComponent> components;
  std::uint64_t bytes_in = 0;
  std::uint64_t bytes_out = 0;
  double seconds = 0;
};

/// Converts `model` (opened from files: safetensors, sharded, diffusers folder, GGUF) to `out`.
/// A one-component model becomes one file at `out`; a model with several components becomes a
/// diffusers folder at `out` (model_index.json, <component>/config.json and one weights file per
/// component), which must not exist yet. Tensors are read, quantized and written one at a time
/// (host memory: about the largest tensor three times, not the model), into a temporary file or
/// folder beside `out` that is renamed into place at the end: on any failure, a full disk or a
/// cancellation included, nothing is left at `out` and an existing file there is unchanged.
/// Linear weights (2-D `.weight` of a linear leaf, in f32/f16/bf16) of a listed component are
/// quantized where the quantizer can store them; other tensors are written unchanged.
[[nodiscard]] Result<ConvertResult> convert_model(const Model& model, std::string_view out,
                                                  const ConvertOptions& options) noexcept;

}  // namespace v1
}  // namespace dmem
