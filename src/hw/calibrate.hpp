// Internal: `dmem calibrate` measures what the planner otherwise assumes (host<->device bandwidth,
// GEMM throughput, disk read rate, host memcpy and sgemm) and writes the calibration file that
// apply_calibration reads (docs/hardware.md, "Calibration file"; docs/budgets.md, "Calibration").
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "dmem/status.hpp"
#include "runtime/compute_device.hpp"

namespace dmem::detail {

/// The figures of a calibration file; an unset figure is left out of the file.
struct CalibrationFigures {
  std::string device;  ///< free text: what was measured
  std::optional<double> h2d_pinned_gbps, h2d_pageable_gbps, d2h_pinned_gbps;
  std::optional<double> bf16_tflops, fp8_tflops, mem_gbps;
  std::optional<double> disk_read_gbps, cpu_gflops;
  std::optional<double> activation_scale;  ///< factor on the activation model (from traces)
};

/// Reads a calibration file into figures, checked exactly as apply_calibration checks it.
[[nodiscard]] Result<CalibrationFigures> read_calibration_figures(std::string_view path) noexcept;
/// The file's JSON text (version 1, keys in a fixed order, a newline at the end).
[[nodiscard]] std::string calibration_json_text(const CalibrationFigures& figures);
/// Writes the file atomically (temp + rename): all or nothing.
[[nodiscard]] Status write_calibration(std::string_view path,
                                       const CalibrationFigures& figures) noexcept;

/// One measurement, as a row of the table `dmem calibrate` prints.
struct CalibrationRow {
  std::string what;   ///< "H2D pinned"
  std::string shape;  ///< "256 MiB x 8", "4096 x 3072 x 3072"
  std::optional<double> value;
  std::string unit;  ///< "GB/s", "TFLOPS", "GFLOPS"
  std::string key;   ///< calibration key it fills, or "" (informational)
  std::string note;  ///< why there is no value, or how it was measured
};

// ---- host measurements (calibrate_host.cpp) ---------------------------------------------------

/// memcpy between two `bytes` buffers (touched first), best of `reps`, GB/s (bytes copied / s).
[[nodiscard]] Result<double> measure_memcpy_gbps(std::uint64_t bytes, int reps) noexcept;
/// True when this build multiplies with OpenBLAS (else a plain loop stands in).
[[nodiscard]] bool have_openblas() noexcept;
/// f32 GEMM C[m,n] = A[m,k] · B[n,k]ᵀ through OpenBLAS's sgemm (the CPU device's linear), best of
/// `reps`, GFLOPS (2·m·n·k / s).
[[nodiscard]] Result<double> measure_sgemm_gflops(std::uint64_t m, std::uint64_t n, std::uint64_t k,
                                                  int reps) noexcept;

struct DiskReadRate {
  double gbps = 0;
  std::uint64_t bytes = 0;  ///< bytes read
  bool cold = false;        ///< the page cache was dropped first (posix_fadvise DONTNEED)
};
/// Reads `files` in order (at most `max_bytes` in all) sequentially; with `cold`, asks the kernel
/// to drop their cached pages first (POSIX_FADV_DONTNEED; pages another process maps stay).
[[nodiscard]] Result<DiskReadRate> measure_disk_read(const std::vector<std::string>& files,
                                                     std::uint64_t max_bytes, bool cold) noexcept;

// ---- device measurements (calibrate_device.cpp) -----------------------------------------------

/// Throughput of the device's own linear (y = x · Wᵀ, x f32 [tokens, in], W [out, in] in `dtype`),
/// best of `reps` calls after one warm-up, TFLOPS (2·tokens·in·out / s). Errc::unsupported when
/// the device's linear does not take that dtype.
[[nodiscard]] Result<double> measure_device_linear_tflops(ComputeDevice& device, DType dtype,
                                                          std::uint64_t tokens, std::uint64_t in,
                                                          std::uint64_t out, int reps) noexcept;

// ---- the whole run (calibrate.cpp) ------------------------------------------------------------

struct CalibrateOptions {
  bool quick = false;                    ///< smaller shapes and buffers: seconds, not a minute
  bool cuda = false;                     ///< measure CUDA device 0 (copies, its linear)
  std::vector<std::string> model_files;  ///< checkpoint files whose read rate is measured
};

struct CalibrationRun {
  CalibrationFigures figures;  ///< only what was measured
  std::vector<CalibrationRow> rows;
};

/// Measures everything `options` asks for. A measurement that cannot run (no OpenBLAS, a dtype the
/// device's linear refuses) is a row with a note, not an error; an error is returned only when
/// nothing sensible can be measured (no CUDA device with options.cuda, an unreadable model file).
[[nodiscard]] Result<CalibrationRun> run_calibration(const CalibrateOptions& options) noexcept;

/// Where figures measured now replace those of a base file (keys not measured are kept).
void merge_figures(CalibrationFigures& base, const CalibrationFigures& measured);

// ---- folding a run back in (calibrate_fold.cpp) -----------------------------------------------

struct FoldResult {
  CalibrationFigures figures;  ///< the base with the folded keys replaced
  /// The compute key that changed ("cpu_gflops", "bf16_tflops"), or "" when the step time could
  /// not be folded; its value the run's plan used, and the folded one.
  std::string key;
  double before = 0, after = 0;
  /// activation_scale: the factor the run's plan used and the folded one, when folded.
  std::optional<double> activation_before, activation_after;
  std::vector<std::string> lines;  ///< what was read and done, for the user
};

/// Folds a `dmem run --trace` file into a calibration (docs/budgets.md, "Calibration"):
/// - the compute throughput of the device that ran is scaled by estimated / measured step time;
/// - activation_scale is scaled by measured / estimated activations (per phase, the device peak
///   inside the phase span minus the plan's weights; the largest ratio wins). A run whose
///   activations were synthetic (dmem run: run.synthetic_activations) only raises it, and a
///   scaled-down run does not fold it.
/// `base`: the calibration to start from (its other keys are kept). The figure the run was
/// planned with comes from the trace (plan.* facts), else from `base`, else from the probe.
/// Errors (Errc::invalid_argument, rule calibrate.trace) name what the trace lacks when neither
/// part can be folded.
[[nodiscard]] Result<FoldResult> fold_trace(std::string_view trace_path,
                                            const std::optional<std::string>& base) noexcept;

}  // namespace dmem::detail
