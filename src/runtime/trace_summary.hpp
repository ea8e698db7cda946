// What `dmem report` says about a trace: peaks per store against budgets and estimates, load
// throughput, bytes moved, stalls and copy/compute overlap per step, evictions. Reads the Chrome
// trace JSON that Trace::write_chrome_json writes (and other Chrome traces: unknown events are
// ignored). docs/runtime.md, "Traces", defines every figure.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "dmem/status.hpp"

namespace dmem::detail {

/// Largest trace file `dmem report` reads (checked before reading; rule file.too_large).
inline constexpr std::uint64_t kMaxTraceFileBytes = std::uint64_t{1} << 30;

struct StoreSummary {
  std::string store;  ///< "device", "pinned", "pageable", "disk" or another name
  std::optional<std::uint64_t> peak_bytes;   ///< max of the "memory <store>" counter
  std::optional<double> budget_bytes;        ///< "budget.<store>" from the trace's "dmem" facts
  std::optional<double> estimate_bytes;      ///< "estimate.<store>"
  std::optional<double> estimate_error_pct;  ///< (estimate - peak) / peak × 100
};

struct StepSummary {
  std::uint64_t index = 0;  ///< the span's "index" argument, else its position
  std::string name;
  double start_s = 0;
  double seconds = 0;
  std::uint64_t h2d_bytes = 0;  ///< "copy" spans starting inside the step, d2h absent or 0
  std::uint64_t h2d_copies = 0;
  std::uint64_t d2h_bytes = 0;
  std::uint64_t d2h_copies = 0;
  double stall_seconds = 0;            ///< "wait" spans starting inside the step
  double copy_seconds = 0;             ///< all copies starting inside the step
  double overlapped_copy_seconds = 0;  ///< of copy_seconds, covered by some "compute" span
  /// overlapped_copy_seconds / copy_seconds; absent when the step copied nothing.
  std::optional<double> overlap;
};

/// One store during one phase: the counter's peak inside the phase's span (its value when the
/// phase began counts) beside the "estimate.phase.<phase>.<store>" fact.
struct PhaseStoreSummary {
  std::string store;
  std::optional<std::uint64_t> peak_bytes;
  std::optional<double> estimate_bytes;
  std::optional<double> estimate_error_pct;  ///< (estimate - peak) / peak × 100
};

struct PhaseSummary {
  std::string name;
  double start_s = 0;
  double seconds = 0;
  std::optional<double> estimate_seconds;            ///< "estimate.phase.<name>.seconds"
  std::optional<double> seconds_estimate_error_pct;  ///< (estimate - seconds) / seconds × 100
  /// "estimate.phase.<name>.weights" / ".activations": the device peak's planned parts.
  std::optional<double> estimate_weights_bytes, estimate_activation_bytes;
  std::vector<PhaseStoreSummary> stores;  ///< those with a measured peak or a non-zero estimate
};

struct TraceSummary {
  std::vector<StoreSummary> stores;

  std::uint64_t load_spans = 0;
  double load_seconds = 0;  ///< the union of "load" spans
  std::uint64_t load_bytes = 0;
  std::optional<double> load_gbps;  ///< load_bytes / load_seconds / 1e9

  std::vector<PhaseSummary> phases;
  std::vector<StepSummary> steps;
  double steps_seconds = 0;
  std::optional<double> mean_step_seconds;
  std::uint64_t h2d_bytes = 0;  ///< over all steps
  std::uint64_t d2h_copies = 0;
  std::uint64_t d2h_bytes = 0;
  double stall_seconds = 0;
  std::optional<double> overlap;  ///< over all steps' copies
  std::optional<double> estimate_step_seconds;
  std::optional<double> step_estimate_error_pct;  ///< (estimate - mean) / mean × 100

  std::uint64_t evictions = 0;
  std::uint64_t evicted_bytes = 0;

  std::uint64_t events = 0;          ///< trace events read
  std::uint64_t dropped_events = 0;  ///< "trace.dropped": the recorder's cap was reached
  std::string device;                ///< "device" fact, when present
  /// "run.scale_down" fact: `dmem run --scale-down F` ran F times fewer tokens than the estimate.
  std::optional<double> scale_down;
  /// "plan.cpu_gflops", "plan.bf16_tflops" facts: the compute figures the estimate used.
  std::optional<double> plan_cpu_gflops, plan_bf16_tflops;
  /// "plan.activation_scale": the calibrated factor on the activation model the estimate used.
  std::optional<double> plan_activation_scale;
  /// "run.synthetic_activations" = 1: the run allocated only its linear layers' inputs and
  /// outputs (dmem run), not a pipeline's real activations.
  bool synthetic_activations = false;
};

/// Summarises trace JSON text. Errors: Errc::format_error, rule "report.json" (not JSON) or
/// "report.format" (JSON, but not a trace: wrong types), with `file` named.
[[nodiscard]] Result<TraceSummary> summarize_trace(std::string_view json_text,
                                                   std::string_view file) noexcept;

/// Reads `path` (a regular file of at most kMaxTraceFileBytes) and summarises it.
[[nodiscard]] Result<TraceSummary> summarize_trace_file(std::string_view path) noexcept;

}  // namespace dmem::detail
