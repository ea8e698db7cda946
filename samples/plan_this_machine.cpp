// Sample: probe this machine and print the three best ways to run a model on it.
//
//   sample_plan_this_machine [model] [quality|speed|memory|balanced]
//
// The same steps as `dmem plan`, through the library: probe, plan, read the ranked result.
#include <cstdio>
#include <string>

#include <dmem/dmem.hpp>

int main(int argc, char** argv) {
  const char* target = argc > 1 ? argv[1] : "qwen-image";
  const std::string prefer = argc > 2 ? argv[2] : "balanced";

  dmem::Result<dmem::Model> model = dmem::open_model(target);
  if (!model) {
    std::fprintf(stderr, "%s\n", model.status().to_string().c_str());
    return 2;
  }
  dmem::Result<dmem::Hardware> hw = dmem::probe_hardware();
  if (!hw) {
    std::fprintf(stderr, "%s\n", hw.status().to_string().c_str());
    return 2;
  }
  for (const dmem::GpuSpec& g : hw->gpus)
    std::printf("gpu %s sm_%u: %s free of %s\n", g.name.c_str(), g.sm(),
                dmem::format_bytes(g.vram_free).c_str(), dmem::format_bytes(g.vram_total).c_str());
  std::printf("ram available %s, %u cores\n", dmem::format_bytes(hw->ram_available).c_str(),
              hw->cpu_cores);

  dmem::PlanOptions options;
  if (prefer == "quality")
    options.prefer = dmem::Preference::quality;
  else if (prefer == "speed")
    options.prefer = dmem::Preference::speed;
  else if (prefer == "memory")
    options.prefer = dmem::Preference::memory;
  dmem::Workload workload;  // 1024x1024, 50 steps
  dmem::Result<dmem::PlanReport> report = dmem::make_plans(*model, *hw, workload, options);
  if (!report) {
    std::fprintf(stderr, "%s\n", report.status().to_string().c_str());
    return 2;
  }
  if (report->plans.empty()) {
    std::printf("no viable plan; %zu candidates rejected, e.g. %s\n", report->rejected.size(),
                report->rejected.empty() || report->rejected[0].violations.empty()
                    ? "-"
                    : report->rejected[0].violations[0].message.c_str());
    return 1;
  }
  for (std::size_t i = 0; i < report->plans.size() && i < 3; ++i) {
    const dmem::Plan& p = report->plans[i];
    std::printf("%s. %s\n   VRAM %s, RAM at load %s, %.2f s/step, %.0f s in all, quality %s\n",
                p.id.c_str(), dmem::strategy_summary(p.strategy).c_str(),
                dmem::format_bytes(p.estimate.vram_peak_bytes).c_str(),
                dmem::format_bytes(p.estimate.load_ram_peak_bytes).c_str(), p.estimate.step_seconds,
                p.estimate.total_seconds, p.quality_tier.c_str());
  }
  return 0;
}
