// `dmem calibrate --from-trace`: a run's measured step time corrects the compute throughput the
// planner assumed for the device that ran it. The planner's step time is compute over that
// throughput (plus transfers, which a compute-bound step hides), so scaling the throughput by
// estimated / measured makes the next estimate for the same work match what was measured.
// Likewise the device peak of each phase, less the plan's weights, corrects the activation
// model's factor (activation_scale).
#include <algorithm>
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
// The range calibration.cpp accepts for activation_scale.
constexpr double kMinActivationScale = 0.1, kMaxActivationScale = 10.0;

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

// The step-time part: the compute key of the device that ran. `r.figures` holds the base.
Status fold_step_time(std::string_view trace_path, const TraceSummary& s, FoldResult& r) {
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
  const std::string key = cuda ? "bf16_tflops" : "cpu_gflops";
  const double scale = s.scale_down && *s.scale_down > 1 ? *s.scale_down : 1.0;
  // A scaled-down run computes `scale` times fewer tokens than its estimate describes; its
  // GEMMs, which set the step time, are linear in the tokens.
  const double estimated = *s.estimate_step_seconds / scale;
  const double measured = *s.mean_step_seconds;
  const double after = *planned * estimated / measured;
  if (!(after > 0) || after > 1e9)
    return trace_error(trace_path, "the folded " + key + " is out of range",
                       "check that the trace is from dmem run");
  r.key = key;
  r.before = *planned;
  r.after = after;
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
  return Status::ok();
}

// The activation part: true when activation_scale was folded; else a line says why not.
bool fold_activations(const TraceSummary& s, FoldResult& r) {
  if (s.scale_down && *s.scale_down > 1) {
    std::string line = "activations not folded: the run was scaled down x";
    line += fmt("%g", *s.scale_down);
    line += ", its activations are not the model's";
    r.lines.push_back(std::move(line));
    return false;
  }
  // Per phase: what the device held beyond the plan's weights, against the plan's activations.
  double ratio = -1, measured = 0, estimated = 0;
  std::string phase;
  for (const PhaseSummary& p : s.phases) {
    if (!p.estimate_activation_bytes || !(*p.estimate_activation_bytes > 0) ||
        !p.estimate_weights_bytes)
      continue;
    for (const PhaseStoreSummary& st : p.stores) {
      if (st.store != "device" || !st.peak_bytes) continue;
      const double m =
          std::max(0.0, static_cast<double>(*st.peak_bytes) - *p.estimate_weights_bytes);
      const double q = m / *p.estimate_activation_bytes;
      if (q > ratio) {
        ratio = q;
        measured = m;
        estimated = *p.estimate_activation_bytes;
        phase = p.name;
      }
    }
  }
  if (ratio < 0) {
    r.lines.push_back(
        "activations not folded: no phase with a device peak and the plan's activation and weight "
        "estimates (estimate.phase.<phase>.activations, .weights)");
    return false;
  }
  double planned = 1.0;
  if (s.plan_activation_scale && *s.plan_activation_scale > 0)
    planned = *s.plan_activation_scale;
  else if (r.figures.activation_scale)
    planned = *r.figures.activation_scale;
  std::string line = "activations (";
  line += phase;
  line += "): device peak less the plan's weights ";
  line += fmt("%.0f", measured);
  line += " bytes, estimated ";
  line += fmt("%.0f", estimated);
  const double folded = std::clamp(planned * ratio, kMinActivationScale, kMaxActivationScale);
  if (s.synthetic_activations && !(folded > planned)) {
    line +=
        ": not folded (the run's activations were synthetic, its linear layers' inputs and "
        "outputs only: they can raise activation_scale, never lower it)";
    r.lines.push_back(std::move(line));
    return false;
  }
  r.lines.push_back(std::move(line));
  r.activation_before = planned;
  r.activation_after = folded;
  r.figures.activation_scale = folded;
  std::string done = "activation_scale: ";
  done += fmt("%.4g", planned);
  done += " -> ";
  done += fmt("%.4g", folded);
  done += folded != planned * ratio ? " (x measured / estimated, kept within 0.1 to 10)"
                                    : " (x measured / estimated)";
  r.lines.push_back(std::move(done));
  return true;
}

}  // namespace

Result<FoldResult> fold_trace(std::string_view trace_path,
                              const std::optional<std::string>& base) noexcept {
  auto summary = summarize_trace_file(trace_path);
  if (!summary) return summary.status();
  const TraceSummary& s = *summary;
  FoldResult r;
  if (base) {
    auto figures = read_calibration_figures(*base);
    if (!figures) return figures.status();
    r.figures = std::move(*figures);
  }
  const Status step = fold_step_time(trace_path, s, r);
  const bool activations = fold_activations(s, r);
  if (!step) {
    if (!activations) return step;
    std::string line = "step time not folded: ";
    line += step.message();
    r.lines.insert(r.lines.begin(), std::move(line));
  }
  if (r.figures.device.empty())
    r.figures.device = s.device.empty() ? "from a trace" : s.device + " (from a trace)";
  return r;
}

}  // namespace dmem::detail
