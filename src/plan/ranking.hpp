// Internal: ordering viable plans for a preference, and the dominance filter (docs/planner.md,
// "Ranking").
#pragma once

#include <vector>

#include "dmem/plan.hpp"

namespace dmem::detail {

/// What ranking compares besides the estimate.
struct PlanFacts {
  int denoiser_tier = 0;          ///< quality_rank() of the denoiser storage (0 = native)
  int encoder_tier = 0;           ///< worst over the text encoders
  std::uint64_t vram_usable = 0;  ///< tightest GPU's budget after the margin (0: CPU only)
};

struct Ranked {
  Plan plan;
  PlanFacts facts;
};

/// True when `a` is at least as good as `b` on every axis (VRAM, RAM steady and at load, pinned,
/// disk, total seconds, quality of denoiser and encoders) and better on one.
[[nodiscard]] bool dominates(const Ranked& a, const Ranked& b) noexcept;

/// Removes dominated plans (and exact duplicates), keeping the first of equals.
void prune_dominated(std::vector<Ranked>& plans);

/// Sorts best first for the preference and numbers the plans "1", "2", ...
void rank_plans(std::vector<Ranked>& plans, Preference prefer);

/// The balanced score (lower is better); exposed for --explain.
[[nodiscard]] double balanced_score(const Ranked& r, double fastest_total) noexcept;

}  // namespace dmem::detail
