// Budget rules: the estimate of every phase against VRAM, RAM (load and steady), pinned and disk,
// each with `options.margin` held back.
#include <algorithm>
#include <cmath>

#include "dmem/units.hpp"
#include "plan/rules.hpp"

namespace dmem::detail {

namespace {

std::uint64_t usable(std::uint64_t budget, double margin) {
  const double m = std::clamp(margin, 0.0, 0.99);
  return static_cast<std::uint64_t>(std::floor(static_cast<double>(budget) * (1.0 - m)));
}

void over(std::vector<Violation>& out, const char* rule, const char* what, std::uint64_t need,
          std::uint64_t budget, double margin, std::string fix) {
  const std::uint64_t limit = usable(budget, margin);
  if (need <= limit) return;
  char pct[32];
  std::snprintf(pct, sizeof pct, "%.0f%%", margin * 100.0);
  out.push_back({rule, "",
                 std::string(what) + " needs " + format_bytes(need) + " of " + format_bytes(limit) +
                     " usable (" + format_bytes(budget) + " less a " + pct + " margin)",
                 std::move(fix)});
}

}  // namespace

void check_budgets(const RuleContext& ctx, std::vector<Violation>& out) {
  if (ctx.estimate == nullptr) return;
  const Estimate& e = *ctx.estimate;
  const Hardware& hw = ctx.hardware;
  const double m = ctx.options.margin;
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
    over(out, "budget.vram", "peak VRAM", e.vram_peak_bytes, vram, m,
         "offload or stream more of the largest component (partial residency, group offload), "
         "or store it smaller (layerwise cast, a quantizer)");
  }
  over(out, "budget.ram_load", "RAM during load", e.load_ram_peak_bytes, hw.ram_available, m,
       "load with dmem's streaming loader into the final home (no full host copy), quantize "
       "fewer components on the host, or free RAM");
  over(out, "budget.ram_steady", "RAM during inference", e.ram_peak_bytes, hw.ram_available, m,
       "keep more weights on the GPU, park offloaded weights on disk, or store them smaller");
  const std::uint64_t pinned = hw.pinned_limit != 0 ? hw.pinned_limit : hw.ram_available / 2;
  over(out, "budget.pinned", "pinned (page-locked) RAM", e.pinned_bytes, pinned, m,
       "park offloaded weights in pageable RAM (park: pageable) or raise --pinned-limit");
  over(out, "budget.disk", "disk", e.disk_bytes, hw.disk_free, m,
       "keep storage native so the checkpoint is the disk tier, or free space at the cache dir");
}

}  // namespace dmem::detail
