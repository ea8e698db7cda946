// Ranking: dominance pruning and the per-preference order (docs/planner.md, "Ranking").
#include "plan/ranking.hpp"

#include <algorithm>
#include <cmath>
#include <string>
#include <unordered_map>

#include "dmem/quantizer.hpp"
#include "plan/rules.hpp"

namespace dmem::detail {

namespace {

// Axes where lower is better, in one array so dominance is a loop.
std::array<double, 9> axes(const Ranked& r) {
  const Estimate& e = r.plan.estimate;
  return {static_cast<double>(e.vram_peak_bytes),      static_cast<double>(e.ram_peak_bytes),
          static_cast<double>(e.load_ram_peak_bytes),  static_cast<double>(e.pinned_bytes),
          static_cast<double>(e.disk_bytes),           e.total_seconds,
          static_cast<double>(e.bytes_moved_per_step), static_cast<double>(r.facts.denoiser_tier),
          static_cast<double>(r.facts.encoder_tier)};
}

double fraction(std::uint64_t used, std::uint64_t usable) {
  return usable == 0 ? 0.0 : static_cast<double>(used) / static_cast<double>(usable);
}

// x rounded to a multiple of `step`.
double grid(double x, double step) {
  return std::round(x / step) * step;
}

bool less(const RankKey& a, const RankKey& b) {
  return std::lexicographical_compare(a.begin(), a.end(), b.begin(), b.end());
}

std::string family_of(const Model& model, const Strategy& s) {
  for (const auto& cs : s.components) {
    const Component* c = model.find(cs.component);
    if (c == nullptr || c->role != Role::denoiser) continue;
    const QuantizerCaps* q = storage_caps(cs.storage);
    std::string f = q != nullptr ? q->display : std::string("native");
    f += "/";
    f += placement_kind_name(cs.placement.kind);
    return f;
  }
  return "-";
}

}  // namespace

PlanFacts plan_facts(const Model& model, const Strategy& s, const Hardware& hw, double margin) {
  PlanFacts f;
  auto usable = [&](std::uint64_t b) {
    return static_cast<std::uint64_t>(std::floor(static_cast<double>(b) * (1.0 - margin)));
  };
  if (!hw.gpus.empty()) {
    std::uint64_t v = hw.gpus.front().vram_free;
    for (const auto& g : hw.gpus) v = std::min(v, g.vram_free);
    f.vram_usable = usable(v);
  }
  f.ram_usable = usable(hw.ram_available);
  for (const auto& cs : s.components) {
    const Component* c = model.find(cs.component);
    const QuantizerCaps* q = storage_caps(cs.storage);
    const int t = q == nullptr ? 0 : quality_rank(q->quality);
    if (c != nullptr && c->role == Role::denoiser)
      f.denoiser_tier = std::max(f.denoiser_tier, t);
    else if (c != nullptr && c->role != Role::vae)
      f.encoder_tier = std::max(f.encoder_tier, t);
  }
  f.family = family_of(model, s);
  return f;
}

bool dominates(const Ranked& a, const Ranked& b) noexcept {
  const auto x = axes(a), y = axes(b);
  bool better = false;
  for (std::size_t i = 0; i < x.size(); ++i) {
    if (x[i] > y[i]) return false;
    if (x[i] < y[i]) better = true;
  }
  return better;
}

double balanced_score(const Ranked& r) noexcept {
  // ln(seconds): a plan twice as slow costs ln 2 ≈ 0.69, about two denoiser tiers. The log makes
  // the score independent of the other plans (dividing by the fastest total only shifts it).
  const double t = std::log(std::max(r.plan.estimate.total_seconds, 1e-9));
  double s = t + 0.35 * r.facts.denoiser_tier + 0.10 * r.facts.encoder_tier;
  // Prefer headroom: a plan above 85% of the usable VRAM is one allocation away from OOM.
  const double use = fraction(r.plan.estimate.vram_peak_bytes, r.facts.vram_usable);
  if (use > 0.85) s += (use - 0.85) * 2.0;
  return s;
}

double memory_score(const Ranked& r) noexcept {
  const Estimate& e = r.plan.estimate;
  return fraction(e.vram_peak_bytes, r.facts.vram_usable) +
         fraction(std::max(e.ram_peak_bytes, e.load_ram_peak_bytes), r.facts.ram_usable);
}

RankKey rank_key(const Ranked& r, Preference prefer) noexcept {
  const Estimate& e = r.plan.estimate;
  const double q = r.facts.denoiser_tier * 16.0 + r.facts.encoder_tier;
  const double moved = static_cast<double>(e.bytes_moved_per_step);
  const double vram = static_cast<double>(e.vram_peak_bytes);
  // Scores and seconds on a fixed grid: two plans that cost the same (the load summed over other
  // parts, say) must tie exactly, so the next key decides rather than rounding noise.
  const double seconds = grid(e.total_seconds, 1e-6);
  switch (prefer) {
    case Preference::quality:
      return {q, seconds, moved, vram};
    case Preference::speed:
      return {seconds, moved, q, vram};
    case Preference::memory:
      return {grid(memory_score(r), 1e-9), q, seconds, vram};
    case Preference::balanced:
      break;
  }
  // At the same score a plan that moves fewer bytes per step wins over one that takes less VRAM:
  // copies hidden behind compute are free only while the bandwidth holds, and every streamed
  // byte is parked (pinned) in RAM the machine shares with everything else.
  return {grid(balanced_score(r), 1e-9), q, moved, vram};
}

void prune_dominated(std::vector<Ranked>& plans, Preference prefer) {
  // The best plan of each family stays even when dominated: it is the plan a user would build by
  // hand, and the list shows its honest cost next to the winner.
  std::unordered_map<std::string, std::size_t> best;
  for (std::size_t i = 0; i < plans.size(); ++i) {
    auto [it, fresh] = best.emplace(plans[i].facts.family, i);
    if (!fresh && less(rank_key(plans[i], prefer), rank_key(plans[it->second], prefer)))
      it->second = i;
  }
  std::vector<bool> keep(plans.size(), false);
  for (const auto& [f, i] : best) keep[i] = true;
  std::vector<bool> drop(plans.size(), false);
  for (std::size_t i = 0; i < plans.size(); ++i) {
    if (keep[i]) continue;
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

void rank_plans(std::vector<Ranked>& plans, Preference prefer) {
  std::vector<std::pair<RankKey, std::size_t>> keys;
  keys.reserve(plans.size());
  for (std::size_t i = 0; i < plans.size(); ++i) keys.emplace_back(rank_key(plans[i], prefer), i);
  std::stable_sort(keys.begin(), keys.end(),
                   [](const auto& a, const auto& b) { return less(a.first, b.first); });
  std::vector<Ranked> sorted;
  sorted.reserve(plans.size());
  for (const auto& [k, i] : keys) sorted.push_back(std::move(plans[i]));
  plans = std::move(sorted);
  for (std::size_t i = 0; i < plans.size(); ++i) plans[i].plan.id = std::to_string(i + 1);
}

}  // namespace dmem::detail
