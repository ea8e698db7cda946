// Internal: engine profiles. A profile says which strategies an engine can express (and how it
// actually runs them: diffusers moves every component under enable_model_cpu_offload, so a
// resident VAE beside a model-offloaded transformer is offloaded too) and adds the engine's own
// memory behaviour to dmem's estimate. docs/engines.md lists the facts and their sources.
#pragma once

#include <string>
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

/// diffusers' settings that change its load-time RAM (docs/engines.md, "Load").
struct DiffusersLoad {
  bool low_cpu_mem_usage = true;  ///< false: weights materialised randomly, then overwritten
  bool device_map = true;         ///< false: every component lands in RAM before .to("cuda")
};

/// Host RAM peak while diffusers loads the expressed strategy with these settings (the emitted
/// script uses the defaults).
[[nodiscard]] std::uint64_t diffusers_load_ram(ModelProfile& profile, const Strategy& strategy,
                                               const DiffusersLoad& load = {});

/// Bytes bitsandbytes leaves unquantized in a component that dmem's quantizer would pack:
/// modules transformers keeps in fp32 (`_keep_in_fp32_modules`, T5's `wo`) and the output head
/// it never converts (`lm_head`). Returned as extra bytes over dmem's stored size.
[[nodiscard]] std::uint64_t bnb_unquantized_extra(ModelProfile& profile,
                                                  const ComponentStrategy& cs);

/// Pipelines whose prompt the emitted script encodes in a phase of its own (text encoder
/// dropped or on the CPU): the diffusers pipeline class and its encode_prompt outputs.
[[nodiscard]] bool diffusers_encodes_separately(const Model& model) noexcept;

}  // namespace dmem::detail
