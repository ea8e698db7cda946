// Ranking: dominance pruning and the per-preference order (docs/planner.md, "Ranking").
#include "plan/ranking.hpp"

#include <algorithm>
#include <array>
#include <string>
#include <tuple>

namespace dmem::detail {

namespace {

// Axes where lower is better, in one array so dominance is a loop.
std::array<double, 8> axes(const Ranked& r) {
  const Estimate& e = r.plan.estimate;
  return {static_cast<double>(e.vram_peak_bytes),     static_cast<double>(e.ram_peak_bytes),
          static_cast<double>(e.load_ram_peak_bytes), static_cast<double>(e.pinned_bytes),
          static_cast<double>(e.disk_bytes),          e.total_seconds,
          static_cast<double>(r.facts.denoiser_tier), static_cast<double>(r.facts.encoder_tier)};
}

}  // namespace

bool dominates(const Ranked& a, const Ranked& b) noexcept {
  const auto x = axes(a), y = axes(b);
  bool better = false;
  for (std::size_t i = 0; i < x.size(); ++i) {
    if (x[i] > y[i]) return false;
    if (x[i] < y[i]) better = true;
  }
  return better;
}

void prune_dominated(std::vector<Ranked>& plans) {
  std::vector<bool> drop(plans.size(), false);
  for (std::size_t i = 0; i < plans.size(); ++i) {
    if (drop[i]) continue;
    const auto xi = axes(plans[i]);
    for (std::size_t j = 0; j < plans.size(); ++j) {
      if (i == j || drop[j]) continue;
      if (dominates(plans[j], plans[i]) || (j < i && axes(plans[j]) == xi)) {
        drop[i] = true;
        break;
      }
    }
  }
  std::size_t w = 0;
  for (std::size_t i = 0; i < plans.size(); ++i)
    if (!drop[i]) {
      if (w != i) plans[w] = std::move(plans[i]);
      ++w;
    }
  plans.resize(w);
}

double balanced_score(const Ranked& r, double fastest_total) noexcept {
  const double t = fastest_total > 0 ? r.plan.estimate.total_seconds / fastest_total : 1.0;
  double s = t + 0.35 * r.facts.denoiser_tier + 0.10 * r.facts.encoder_tier;
  // Prefer headroom: a plan above 85% of the usable VRAM is one allocation away from OOM.
  if (r.facts.vram_usable > 0) {
    const double use = static_cast<double>(r.plan.estimate.vram_peak_bytes) /
                       static_cast<double>(r.facts.vram_usable);
    if (use > 0.85) s += (use - 0.85) * 2.0;
  }
  return s;
}

void rank_plans(std::vector<Ranked>& plans, Preference prefer) {
  double fastest = 0;
  for (const auto& r : plans)
    if (fastest == 0 || r.plan.estimate.total_seconds < fastest)
      fastest = r.plan.estimate.total_seconds;
  auto key = [&](const Ranked& r) {
    const Estimate& e = r.plan.estimate;
    const double q = r.facts.denoiser_tier * 16.0 + r.facts.encoder_tier;
    const double moved = static_cast<double>(e.bytes_moved_per_step);
    const double vram = static_cast<double>(e.vram_peak_bytes);
    const double ram = static_cast<double>(e.ram_peak_bytes);
    switch (prefer) {
      case Preference::quality:
        return std::make_tuple(q, e.total_seconds, moved, vram);
      case Preference::speed:
        return std::make_tuple(e.total_seconds, moved, q, vram);
      case Preference::memory:
        return std::make_tuple(vram, ram, q, e.total_seconds);
      case Preference::balanced:
        break;
    }
    return std::make_tuple(balanced_score(r, fastest), q, e.total_seconds, vram);
  };
  std::stable_sort(plans.begin(), plans.end(),
                   [&](const Ranked& a, const Ranked& b) { return key(a) < key(b); });
  for (std::size_t i = 0; i < plans.size(); ++i) plans[i].plan.id = std::to_string(i + 1);
}

}  // namespace dmem::detail
