// Budget rules: the estimate of every phase against VRAM, RAM (load and steady), pinned and disk,
// each with `options.margin` held back.
#include <algorithm>
#include <cmath>
#include <cstdio>

#include "dmem/units.hpp"
#include "plan/rules.hpp"

namespace dmem::detail {

namespace {

std::uint64_t usable(std::uint64_t budget, double margin) {
  const double m = std::clamp(margin, 0.0, 0.99);
  return static_cast<std::uint64_t>(std::floor(static_cast<double>(budget) * (1.0 - m)));
}

struct BudgetText {
  const char* rule;
  const char* what;
  const char* fix;
};

constexpr BudgetText kBudgets[] = {
    {"budget.vram", "peak VRAM",
     "offload or stream more of the largest component (partial residency, group offload), "
     "or store it smaller (layerwise cast, a quantizer)"},
    {"budget.ram_load", "RAM during load",
     "load with dmem's streaming loader into the final home (no full host copy), quantize "
     "fewer components on the host, or free RAM"},
    {"budget.ram_steady", "RAM during inference",
     "keep more weights on the GPU, park offloaded weights on disk, or store them smaller"},
    {"budget.pinned", "pinned (page-locked) RAM",
     "park offloaded weights in pageable RAM (park: pageable) or raise --pinned-limit"},
    {"budget.disk", "disk",
     "keep storage native so the checkpoint is the disk tier, or free space at the cache dir"},
};

}  // namespace

std::vector<BudgetNeed> budget_needs(const RuleContext& ctx) {
  std::vector<BudgetNeed> out;
  if (ctx.estimate == nullptr) return out;
  const Estimate& e = *ctx.estimate;
  const Hardware& hw = ctx.hardware;
  const double m = ctx.options.margin;
  auto add = [&](const char* rule, std::uint64_t need, std::uint64_t budget) {
    out.push_back({rule, need, usable(budget, m), budget});
  };
  if (!hw.gpus.empty() && e.vram_peak_bytes > 0) {
    // The tightest GPU the strategy computes on bounds the peak.
    std::uint64_t vram = 0;
    bool any = false;
    for (const auto& v : ctx.views) {
      const auto gi = static_cast<std::size_t>(std::max(0, v.strategy->placement.gpu));
      if ((compute_devices(v.strategy->placement) & kDeviceCuda) == 0 || gi >= hw.gpus.size())
        continue;
      vram = any ? std::min(vram, hw.gpus[gi].vram_free) : hw.gpus[gi].vram_free;
      any = true;
    }
    if (!any) vram = hw.gpus.front().vram_free;
    add("budget.vram", e.vram_peak_bytes, vram);
  }
  add("budget.ram_load", e.load_ram_peak_bytes, hw.ram_available);
  add("budget.ram_steady", e.ram_peak_bytes, hw.ram_available);
  add("budget.pinned", e.pinned_bytes,
      hw.pinned_limit != 0 ? hw.pinned_limit : hw.ram_available / 2);
  add("budget.disk", e.disk_bytes, hw.disk_free);
  return out;
}

void check_budgets(const RuleContext& ctx, std::vector<Violation>& out) {
  char pct[32];
  std::snprintf(pct, sizeof pct, "%.0f%%", ctx.options.margin * 100.0);
  for (const BudgetNeed& b : budget_needs(ctx)) {
    if (b.need <= b.usable) continue;
    for (const BudgetText& t : kBudgets) {
      if (b.rule != t.rule) continue;
      std::string msg = t.what;
      msg += " needs " + format_bytes(b.need) + " of " + format_bytes(b.usable) + " usable (";
      msg += format_bytes(b.budget) + " less a " + pct + " margin)";
      out.push_back({b.rule, "", std::move(msg), t.fix});
    }
  }
}

}  // namespace dmem::detail
