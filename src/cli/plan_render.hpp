// Rendering a PlanReport for `dmem plan`: the grouped table, --explain, --svg and --json.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

#include "dmem/model.hpp"
#include "dmem/plan.hpp"

namespace dmem::cli {

struct RenderOptions {
  std::size_t top = 5;         ///< plans shown per group in the table
  bool show_rejected = false;  ///< list every rejected candidate
  std::size_t rejected_shown = 5;
};

/// The table of DESIGN.md §8: header, plans grouped (offloading / casting, then quantization),
/// then the rejected candidates.
[[nodiscard]] std::string render_plan_table(const Model& model, const PlanReport& report,
                                            const RenderOptions& options);
/// Why no plan is viable: the candidate that came closest, with what it needs against the budget.
[[nodiscard]] std::string render_no_plan(const Model& model, const PlanReport& report);
/// The arithmetic of one plan, phase by phase (empty string: no plan with that id).
[[nodiscard]] std::string render_explain(const Model& model, const PlanReport& report,
                                         const std::string& id);
/// Stacked bars per phase (VRAM: weights, activations, workspace, reserve; RAM: pinned,
/// pageable) for the best `count` plans, with the budget lines.
[[nodiscard]] std::string render_svg(const Model& model, const PlanReport& report,
                                     std::size_t count);
/// The `--json` document: hardware, workload, warnings[], plans[], rejected[]; with no viable
/// plan also blockers[] and closest.

[[nodiscard]] nlohmann::json plan_json(const Model& model, const PlanReport& report);
/// The totals of an estimate as `plan --json` writes them (vram_peak_bytes ... total_seconds).
[[nodiscard]] nlohmann::json estimate_json(const Estimate& estimate);
/// The phases of an estimate: VRAM parts, RAM pinned / pageable, seconds.
[[nodiscard]] nlohmann::json estimate_phases_json(const Estimate& estimate);
/// The estimate table: per phase VRAM peak, weights, activations, RAM peak, pinned, seconds;
/// then the totals (VRAM peak, RAM at load and steady, load, s/step, total).
[[nodiscard]] std::string render_estimate(const Estimate& estimate, const Workload& workload,
                                          bool gpu);

/// "45 s", "2:33", "1:02:07": seconds as the plan table and the chart print them.
[[nodiscard]] std::string format_duration(double seconds);

/// "Qwen-Image · RTX 5090 ... · 1328×1328, 50 steps · prefer balanced" (no newline).
[[nodiscard]] std::string plan_header(const Model& model, const PlanReport& report);
/// Every component of a strategy, the denoiser first, joined by " · ".
[[nodiscard]] std::string plan_title(const Model& model, const Strategy& strategy);

/// "transformer bf16: 42/60 blocks resident, 18 streamed" for one component of a strategy.
[[nodiscard]] std::string describe_component(const Model& model, const ComponentStrategy& cs);

}  // namespace dmem::cli
