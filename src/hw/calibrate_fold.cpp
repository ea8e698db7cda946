// `dmem calibrate --from-trace`: a run's measured step time corrects the compute throughput the
// planner assumed for the device that ran it. The planner's step time is compute over that
// throughput (plus transfers, which a compute-bound step hides), so scaling the throughput by
// estimated / measured makes the next estimate for the same work match what was measured.
#include <cstdio>
#include <string>

#include "dmem/hardware.hpp"
#include "hw/calibrate.hpp"
#include "runtime/trace_summary.hpp"

namespace dmem::detail {

namespace {

// Stalls above this share of the step time mean copies, not compute, set the pace: the compute
// figure cannot be corrected from such a run.
constexpr double kMaxStallShare = 0.25;

std::string fmt(const char* f, double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, f, v);
  return buf;
}

Status trace_error(std::string_view path, std::string msg, std::string hint) {
  return Status(Errc::invalid_argument, std::move(msg))
      .with_file(std::string(path))
      .with_rule("calibrate.trace")
      .with_hint(std::move(hint));
}

}  // namespace

Result<FoldResult> fold_trace(std::string_view trace_path,
                              const std::optional<std::string>& base) noexcept {
  auto summary = summarize_trace_file(trace_path);
  if (!summary) return summary.status();
  const TraceSummary& s = *summary;
  if (!s.mean_step_seconds || !(*s.mean_step_seconds > 0))
    return trace_error(trace_path, "the trace has no denoising steps to fold",
                       "trace a run with steps: dmem run MODEL --trace t.json");
  if (!s.estimate_step_seconds || !(*s.estimate_step_seconds > 0))
    return trace_error(trace_path, "the trace has no estimated step time (estimate.step_seconds)",
                       "fold a trace written by dmem run --trace");
  const bool cuda = s.device == "cuda";
  if (!cuda) {
    // The CPU device stands in for a plan's GPU on machines without one; its step time then says
    // nothing about that GPU's figures, nor about the CPU's (the plan estimated a GPU).
    for (const StoreSummary& st : s.stores)
      if (st.store == "device" && st.estimate_bytes && *st.estimate_bytes > 0)
        return trace_error(trace_path,
                           "the run's plan computes on a GPU but it ran on the CPU device: its "
                           "step time measures neither",
                           "trace a CPU plan (dmem run MODEL --gpu none --trace t.json) or run "
                           "on the GPU (--device cuda)");
  }
  const double stall_share = s.stall_seconds / s.steps_seconds;
  if (stall_share > kMaxStallShare)
    return trace_error(trace_path,
                       "the steps waited for copies " + fmt("%.0f", stall_share * 100) +
                           " % of the time: they are transfer-bound, so the compute figure "
                           "cannot be read from them",
                       "measure the transfer figures with dmem calibrate instead");

  FoldResult r;
  if (base) {
    auto figures = read_calibration_figures(*base);
    if (!figures) return figures.status();
    r.figures = std::move(*figures);
  }
  // The figure the run's estimate used: recorded in the trace by dmem run; else the base file's;
  // else what the planner assumes on this machine (its probe and preset).
  std::optional<double> planned = cuda ? s.plan_bf16_tflops : s.plan_cpu_gflops;
  if (!planned || !(*planned > 0)) planned = cuda ? r.figures.bf16_tflops : r.figures.cpu_gflops;
  if (!planned) {
    auto hw = probe_hardware();
    if (!hw) return hw.status();
    if (cuda && hw->gpus.empty())
      return trace_error(trace_path, "the trace ran on CUDA but this machine has no GPU",
                         "fold the trace on the machine that ran it");
    planned = cuda ? hw->gpus.front().bf16_tflops : hw->cpu_gflops;
  }
  r.key = cuda ? "bf16_tflops" : "cpu_gflops";
  r.before = *planned;
  const double scale = s.scale_down && *s.scale_down > 1 ? *s.scale_down : 1.0;
  // A scaled-down run computes `scale` times fewer tokens than its estimate describes; its
  // GEMMs, which set the step time, are linear in the tokens.
  const double estimated = *s.estimate_step_seconds / scale;
  const double measured = *s.mean_step_seconds;
  r.after = r.before * estimated / measured;
  if (!(r.after > 0) || r.after > 1e9)
    return trace_error(trace_path, "the folded " + r.key + " is out of range",
                       "check that the trace is from dmem run");
  if (cuda)
    r.figures.bf16_tflops = r.after;
  else
    r.figures.cpu_gflops = r.after;
  if (r.figures.device.empty())
    r.figures.device = cuda ? "cuda (from a trace)" : "cpu (from a trace)";

  r.lines.push_back(
      std::to_string(s.steps.size()) + " steps on the " + (cuda ? "CUDA" : "CPU") +
      " device: measured " + fmt("%.4g", measured) + " s/step, estimated " +
      fmt("%.4g", estimated) + " s/step" +
      (scale > 1 ? " (the estimate / " + fmt("%g", scale) + ", the scale-down)" : ""));
  r.lines.push_back(r.key + ": " + fmt("%.4g", r.before) + " -> " + fmt("%.4g", r.after) +
                    " (x estimated / measured)");
  for (const StoreSummary& st : s.stores)
    if (st.store == "device" && st.peak_bytes && st.estimate_bytes && *st.estimate_bytes > 0)
      r.lines.push_back("device peak " + fmt("%.0f", double(*st.peak_bytes)) + " bytes vs " +
                        fmt("%.0f", *st.estimate_bytes) +
                        " estimated: not folded (the calibration file has no activation key; "
                        "plan with --activation-gib)");
  return r;
}

}  // namespace dmem::detail
