// Internal: ordering viable plans for a preference, and the dominance filter (docs/planner.md,
// "Ranking").
#pragma once

#include <array>
#include <string>
#include <vector>

#include "dmem/plan.hpp"

namespace dmem::detail {

/// What ranking compares besides the estimate.
struct PlanFacts {
  int denoiser_tier = 0;          ///< quality_rank() of the denoiser storage (0 = native)
  int encoder_tier = 0;           ///< worst over the text encoders
  std::uint64_t vram_usable = 0;  ///< tightest GPU's budget after the margin (0: CPU only)
  std::uint64_t ram_usable = 0;   ///< RAM budget after the margin
  std::string family;  ///< denoiser storage × placement kind ("fp8 e4m3 (cast)/resident")
};

struct Ranked {
  Plan plan;
  PlanFacts facts;
};

/// The facts of a strategy on a machine: tiers by quality_rank, budgets after the margin, family.
[[nodiscard]] PlanFacts plan_facts(const Model& model, const Strategy& strategy,
                                   const Hardware& hardware, double margin);

/// True when `a` is at least as good as `b` on every axis (VRAM, RAM steady and at load, pinned,
/// disk, total seconds, bytes moved per step, quality of denoiser and encoders) and better on one.
[[nodiscard]] bool dominates(const Ranked& a, const Ranked& b) noexcept;

/// The preference's order as a key, lower is better; it depends on the plan and the machine's
/// budgets only (never on the other plans), so more memory can only lower the best key.
using RankKey = std::array<double, 4>;
[[nodiscard]] RankKey rank_key(const Ranked& r, Preference prefer) noexcept;

/// Removes dominated plans (and exact duplicates), keeping the first of equals, but never the
/// best plan of a family (denoiser storage × placement kind) for the preference.
void prune_dominated(std::vector<Ranked>& plans, Preference prefer);

/// Sorts best first for the preference and numbers the plans "1", "2", ...
void rank_plans(std::vector<Ranked>& plans, Preference prefer);

/// The balanced score (lower is better): ln(total seconds) + 0.35 × denoiser tier + 0.10 ×
/// encoder tier + 2 × max(0, VRAM peak / usable − 0.85).
[[nodiscard]] double balanced_score(const Ranked& r) noexcept;

/// The memory objective: fraction of the usable VRAM plus fraction of the usable RAM (the larger
/// of steady and load) a plan takes.
[[nodiscard]] double memory_score(const Ranked& r) noexcept;

}  // namespace dmem::detail
