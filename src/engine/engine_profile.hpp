// Internal: engine profiles. A profile says which strategies an engine can express (and how it
// actually runs them: diffusers moves every component under enable_model_cpu_offload, so a
// resident VAE beside a model-offloaded transformer is offloaded too) and adds the engine's own
// memory behaviour to dmem's estimate. docs/engines.md lists the facts and their sources.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "dmem/engine.hpp"
#include "dmem/plan.hpp"
#include "plan/estimator.hpp"

namespace dmem::detail {

/// The strategy as the engine runs it, or why it cannot (`component` names the part it cannot
/// express; empty for the pipeline).
struct Expressed {
  bool ok = false;
  Strategy strategy;
  std::string component;
  std::string why;
};

[[nodiscard]] Expressed express(Engine engine, const Model& model, const Strategy& strategy);

/// Adds the engine's memory behaviour to `estimate` (dmem's estimate of the expressed strategy)
/// and appends one-line notes about it. The dmem engine changes nothing.
void adjust_estimate(Engine engine, ModelProfile& profile, const Strategy& strategy,
                     const Hardware& hardware, Estimate& estimate,
                     std::vector<std::string>* notes = nullptr);

// The per-engine halves (one file each).
[[nodiscard]] Expressed express_diffusers(const Model& model, const Strategy& strategy);
void adjust_diffusers(ModelProfile& profile, const Strategy& strategy, const Hardware& hardware,
                      Estimate& estimate, std::vector<std::string>* notes);

[[nodiscard]] Expressed express_comfyui(const Model& model, const Strategy& strategy);
void adjust_comfyui(ModelProfile& profile, const Strategy& strategy, const Hardware& hardware,
                    Estimate& estimate, std::vector<std::string>* notes);
[[nodiscard]] Expressed express_sdcpp(const Model& model, const Strategy& strategy);
void adjust_sdcpp(ModelProfile& profile, const Strategy& strategy, const Hardware& hardware,
                  Estimate& estimate, std::vector<std::string>* notes);

/// ComfyUI's launch mode for an expressed strategy (docs/engines.md, "ComfyUI").
enum class ComfyMode : std::uint8_t {
  gpu_only,  ///< --gpu-only: every model stored and run on the GPU
  normal,    ///< models move to the GPU for their node and back to RAM when room is needed
  lowvram,   ///< normal, with the denoiser partly loaded (ComfyUI's automatic lowvram)
  novram,    ///< --novram: the denoiser's weights all stream per layer
  cpu,       ///< --cpu
};
[[nodiscard]] ComfyMode comfy_mode(const Model& model, const Strategy& expressed);

/// Shared by the engine profiles: every component of the model listed, in model order (a
/// component the strategy does not name is resident and native); false when the strategy names
/// a component the model lacks (`unknown` gets its name).
[[nodiscard]] bool list_all_components(const Model& model, Strategy& strategy,
                                       std::string& unknown);

/// Whether `s` is the quantizer with this short name ("gguf", "nf4", "fp8", ...) or its stable id
/// ("dmem.quantizer.gguf").
[[nodiscard]] inline bool is_quantizer(const Storage& s, std::string_view name) {
  if (s.kind != StorageKind::quantized) return false;
  if (s.quantizer == name) return true;
  constexpr std::string_view kPrefix = "dmem.quantizer.";
  return s.quantizer.size() == kPrefix.size() + name.size() &&
         s.quantizer.compare(0, kPrefix.size(), kPrefix) == 0 &&
         s.quantizer.compare(kPrefix.size(), name.size(), name) == 0;
}

/// Recomputes an estimate's totals (peaks, pinned, load RAM) from its phases after a profile
/// changed them.
void refresh_totals(Estimate& estimate);

/// diffusers' settings that change its load-time RAM (docs/engines.md, "Load").
struct DiffusersLoad {
  bool low_cpu_mem_usage = true;  ///< false: weights materialised randomly, then overwritten
  bool device_map = true;         ///< false: every component lands in RAM before .to("cuda")
};

/// Host RAM peak while diffusers loads the expressed strategy with these settings (the emitted
/// script uses the defaults).
[[nodiscard]] std::uint64_t diffusers_load_ram(ModelProfile& profile, const Strategy& strategy,
                                               const DiffusersLoad& load = {});

/// Bytes bitsandbytes leaves unquantized in a component that dmem's quantizer would pack: the
/// output head transformers never converts (`lm_head`). Returned as extra bytes over dmem's
/// stored size, which already counts T5's `wo` in fp32 (`_keep_in_fp32_modules`).
[[nodiscard]] std::uint64_t bnb_unquantized_extra(ModelProfile& profile,
                                                  const ComponentStrategy& cs);

/// Pipelines whose prompt the emitted script encodes in a phase of its own (text encoder
/// dropped or on the CPU): the diffusers pipeline class and its encode_prompt outputs.
[[nodiscard]] bool diffusers_encodes_separately(const Model& model) noexcept;

}  // namespace dmem::detail
