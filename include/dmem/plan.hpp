// Planning: every viable strategy for a model on a machine, with estimates, ranked; and the
// composition validator that rejects impossible strategies before anything loads.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "dmem/engine.hpp"
#include "dmem/hardware.hpp"
#include "dmem/model.hpp"
#include "dmem/status.hpp"
#include "dmem/strategy.hpp"

namespace dmem {
inline namespace v1 {

/// Classifier-free guidance: how many denoiser passes a step makes and at what batch.
enum class Guidance : std::uint8_t {
  model_default,  ///< the pipeline's own: Qwen-Image and Wan two passes, SD3 and SDXL batched,
                  ///< FLUX none (guidance-distilled)
  off,            ///< one conditional pass
  on,             ///< conditional and unconditional as two passes, one after the other
  batched,        ///< both in one pass at twice the batch (activations double)
};

struct Workload {
  std::uint32_t width = 1024;
  std::uint32_t height = 1024;
  std::uint32_t frames = 1;  ///< video models
  std::uint32_t batch = 1;
  std::uint32_t steps = 50;
  Guidance cfg = Guidance::model_default;
  std::uint32_t images = 1;              ///< generations per session: the weights are loaded once
  std::optional<double> activation_gib;  ///< override of the activation model (per phase peak)
};

/// "on", "off", "batched", "default".
[[nodiscard]] const char* guidance_name(Guidance g) noexcept;

/// The pipeline's usual settings: the resolution, frames and steps its authors recommend
/// (Qwen-Image 1328x1328/50, FLUX.1-dev 1024x1024/28, FLUX.1-schnell 4 steps, SD3.5 28 steps,
/// SDXL 50, Wan2.1 832x480 with 81 frames/50); 1024x1024/50 for anything else.
[[nodiscard]] Workload default_workload(const Model& model) noexcept;

enum class Preference : std::uint8_t { quality, speed, memory, balanced };

enum class Phase : std::uint8_t { load, encode, denoise, decode };

struct PhaseEstimate {
  Phase phase = Phase::denoise;
  std::uint64_t vram_weights = 0;  ///< resident + in-flight weights
  std::uint64_t vram_activations = 0;
  std::uint64_t vram_workspace = 0;  ///< GEMM workspace, dequant scratch
  std::uint64_t vram_reserve = 0;    ///< CUDA context, allocator slack
  std::uint64_t vram_peak = 0;       ///< sum of the above
  std::uint64_t ram_pinned = 0;
  std::uint64_t ram_pageable = 0;
  std::uint64_t ram_peak = 0;
  double seconds = 0;  ///< phase time (denoise: all steps)
};

struct Estimate {
  std::vector<PhaseEstimate> phases;  ///< load, encode, denoise, decode
  std::uint64_t vram_peak_bytes = 0;
  std::uint64_t ram_peak_bytes = 0;       ///< steady state (inference)
  std::uint64_t load_ram_peak_bytes = 0;  ///< during load
  std::uint64_t pinned_bytes = 0;
  std::uint64_t disk_bytes = 0;
  std::uint64_t bytes_moved_per_step = 0;
  double load_seconds = 0;
  double step_seconds = 0;
  double image_seconds = 0;   ///< one generation once loaded: encode + denoise + decode
  double reload_seconds = 0;  ///< re-reading what the plan frees after a generation (dropped
                              ///< components), paid before every image after the first
  double total_seconds = 0;   ///< load + images x image_seconds + (images - 1) x reload_seconds
};

/// One broken rule: a stable id, the parties involved and how to fix it.
struct Violation {
  std::string rule;       ///< "placement.exclusive", "quantizer.exec_device", "budget.vram" ...
  std::string component;  ///< empty for pipeline-wide rules
  std::string message;
  std::string fix;
};

struct Plan {
  std::string id;  ///< "1", "2" ... in ranked order
  Strategy strategy;
  Estimate estimate;
  std::string quality_tier;        ///< worst tier over components ("native", "fp8", "nf4" ...)
  std::string group;               ///< "offloading / casting" or "quantization"
  std::vector<std::string> notes;  ///< one-line reasons
};

struct Rejected {
  Strategy strategy;
  std::vector<Violation> violations;
};

/// What a strategy needs of one budget against what the machine gives after the margin.
struct BudgetNeed {
  std::string rule;          ///< "budget.vram", "budget.ram_load", "budget.ram_steady", ...
  std::uint64_t need = 0;    ///< bytes the strategy needs
  std::uint64_t usable = 0;  ///< bytes the budget allows (the machine's figure less the margin)
  std::uint64_t budget = 0;  ///< the machine's figure
};

/// The candidate that came closest when nothing is viable: it breaks budgets only, and its
/// largest need / usable ratio is the smallest of all such candidates.
struct NearMiss {
  Strategy strategy;
  Estimate estimate;
  std::vector<BudgetNeed> budgets;  ///< every budget it was checked against
};

class PluginRegistry;

struct PlanOptions {
  Preference prefer = Preference::balanced;
  double margin = 0.10;         ///< fraction of each budget held back (default documented)
  std::uint32_t max_plans = 0;  ///< 0 = all viable
  bool prune = true;  ///< drop dominated plans (the best of each storage × placement family stays)
  /// The quantizers the planner offers and the validator checks come from these plugins'
  /// capabilities (plugin_quantizers()); nullptr: the built-in table (builtin_quantizers()).
  /// Not owned; must outlive the call.
  const PluginRegistry* plugins = nullptr;
  Engine engine = Engine::dmem;  ///< plan only what this engine expresses, with its memory use
};

struct PlanReport {
  Hardware hardware;
  Workload workload;
  PlanOptions options;
  std::vector<Plan> plans;  ///< ranked, best first
  std::vector<Rejected> rejected;
  std::size_t candidates = 0;  ///< strategies costed and checked
  std::size_t rejected_similar =
      0;  ///< rejected ones not listed: same shape and rule as a listed one
  /// The workload outside what the model was trained for (resolution, frames): plans still
  /// hold, the images may not.
  std::vector<std::string> warnings;
  /// Set when no plan is viable and some candidate broke budgets only.
  std::optional<NearMiss> closest;
  /// Per budget, the least that any candidate breaking budgets only needs of it: a budget whose
  /// least need exceeds its usable bytes blocks every plan on its own.
  std::vector<BudgetNeed> least_needs;
};

/// Every viable plan, ranked, and every rejected candidate with its violations.
[[nodiscard]] Result<PlanReport> make_plans(const Model& model, const Hardware& hardware,
                                            const Workload& workload,
                                            const PlanOptions& options = {}) noexcept;

/// Estimates one strategy (no ranking, no validation).
[[nodiscard]] Result<Estimate> estimate(const Model& model, const Strategy& strategy,
                                        const Hardware& hardware,
                                        const Workload& workload) noexcept;

/// Checks a strategy against the rules table (DESIGN.md §3) and the budgets; returns every
/// violation (empty: valid).
[[nodiscard]] Result<std::vector<Violation>> validate(const Model& model, const Strategy& strategy,
                                                      const Hardware& hardware,
                                                      const Workload& workload,
                                                      const PlanOptions& options = {}) noexcept;

}  // namespace v1
}  // namespace dmem
