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

struct Workload {
  std::uint32_t width = 1024;
  std::uint32_t height = 1024;
  std::uint32_t frames = 1;  ///< video models
  std::uint32_t batch = 1;
  std::uint32_t steps = 50;
  std::optional<double> activation_gib;  ///< override of the activation model (per phase peak)
};

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
  double total_seconds = 0;
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

struct PlanOptions {
  Preference prefer = Preference::balanced;
  double margin = 0.10;         ///< fraction of each budget held back (default documented)
  std::uint32_t max_plans = 0;  ///< 0 = all viable
  bool prune = true;  ///< drop dominated plans (the best of each storage × placement family stays)
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
