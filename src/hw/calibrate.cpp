// `dmem calibrate`'s measurements in order: host memcpy and sgemm, the model's files (cold, then
// warm), then CUDA device 0's copies and its own linear per weight dtype.
#include "hw/calibrate.hpp"

#include <cstdio>
#include <string>

#include "backend/cuda/cuda_calibrate.hpp"
#include "backend/cuda/cuda_device.hpp"
#include "backend/cuda/cuda_probe.hpp"
#include "hw/hw_detail.hpp"

namespace dmem::detail {

namespace {

std::string mib(std::uint64_t bytes) {
  std::string out = std::to_string(bytes >> 20);
  out += " MiB";
  return out;
}

std::string times(std::string what, int reps) {
  what += " x ";
  what += std::to_string(reps);
  return what;
}

std::string gemm_shape(std::uint64_t m, std::uint64_t n, std::uint64_t k) {
  std::string out = std::to_string(m);
  out += " x ";
  out += std::to_string(n);
  out += " x ";
  out += std::to_string(k);
  return out;
}

CalibrationRow row(std::string what, std::string shape, std::string unit, std::string key = {}) {
  CalibrationRow r;
  r.what = std::move(what);
  r.shape = std::move(shape);
  r.unit = std::move(unit);
  r.key = std::move(key);
  return r;
}

// Diffusion-sized GEMMs: a 1024x1024 image's 4096 latent tokens through a 3072-wide DiT
// projection (FLUX.1, SD3.5 Large). --quick keeps the width but fewer tokens.
struct Shapes {
  std::uint64_t memcpy_bytes, copy_bytes, disk_bytes;
  int memcpy_reps, copy_reps, gemm_reps;
  std::uint64_t cpu_m, cpu_nk, gpu_tokens, gpu_nk;
};

Shapes shapes_for(bool quick) {
  if (quick) return {64ull << 20, 64ull << 20, 512ull << 20, 3, 5, 2, 512, 1024, 1024, 3072};
  return {512ull << 20, 256ull << 20, 4ull << 30, 5, 10, 3, 4096, 3072, 4096, 3072};
}

void measure_host(const Shapes& sh, CalibrationRun& run) {
  CalibrationRow m = row("host memcpy", times(mib(sh.memcpy_bytes), sh.memcpy_reps), "GB/s");
  auto mc = measure_memcpy_gbps(sh.memcpy_bytes, sh.memcpy_reps);
  if (mc)
    m.value = *mc;
  else
    m.note = mc.status().message();
  m.note =
      m.note.empty() ? "best of the copies (informational: the planner has no key for it)" : m.note;
  run.rows.push_back(std::move(m));

  CalibrationRow g = row("host sgemm", gemm_shape(sh.cpu_m, sh.cpu_nk, sh.cpu_nk), "GFLOPS",
                         have_openblas() ? "cpu_gflops" : "");
  if (!have_openblas()) {
    g.note = "not measured: this build has no OpenBLAS (the CPU device's linear is a plain loop)";
  } else {
    auto gf = measure_sgemm_gflops(sh.cpu_m, sh.cpu_nk, sh.cpu_nk, sh.gemm_reps);
    if (gf && *gf > 0) {
      g.value = *gf;
      g.note = "OpenBLAS, f32, best of the calls";
      run.figures.cpu_gflops = *gf;
    } else {
      g.note = gf ? "too fast to time" : gf.status().message();
    }
  }
  run.rows.push_back(std::move(g));
}

Status measure_disk(const Shapes& sh, const std::vector<std::string>& files, CalibrationRun& run) {
  if (files.empty()) return Status::ok();
  auto cold = measure_disk_read(files, sh.disk_bytes, true);
  if (!cold) return cold.status();
  CalibrationRow c = row("model read, cold", mib(cold->bytes), "GB/s", "disk_read_gbps");
  c.value = cold->gbps;
  c.note = "page cache dropped first (posix_fadvise DONTNEED; pages mapped elsewhere stay)";
  run.figures.disk_read_gbps = cold->gbps;
  run.rows.push_back(std::move(c));
  auto warm = measure_disk_read(files, sh.disk_bytes, false);
  if (!warm) return warm.status();
  CalibrationRow w = row("model read, warm", mib(warm->bytes), "GB/s");
  w.value = warm->gbps;
  w.note = "read again at once: from the page cache where it fits (informational)";
  run.rows.push_back(std::move(w));
  return Status::ok();
}

// CUDA device 0, or why there is none (checked before anything is measured).
Result<CudaDeviceInfo> first_cuda_device() {
  std::string why;
  const auto devices = cuda_devices(&why);
  if (devices.empty()) {
    std::string msg = "no CUDA device";
    if (!why.empty()) {
      msg += ": ";
      msg += why;
    }
    return Status(Errc::unsupported, std::move(msg))
        .with_rule("calibrate.device")
        .with_hint("measure the host only with --device cpu");
  }
  return devices.front();
}

Status measure_cuda(const Shapes& sh, const CudaDeviceInfo& info, CalibrationRun& run) {
  GpuSpec spec;
  spec.cc_major = static_cast<std::uint32_t>(info.cc_major);
  spec.cc_minor = static_cast<std::uint32_t>(info.cc_minor);
  if (const GpuPreset* p = match_preset(info.name, info.total_bytes))
    spec.tensor_cores = p->spec.tensor_cores;
  run.figures.device += " · GPU 0: ";
  run.figures.device += info.name;
  run.figures.device += " (sm_";
  run.figures.device += std::to_string(spec.sm());
  run.figures.device += ")";

  auto copies = cuda_measure_copies(0, sh.copy_bytes, sh.copy_reps);
  if (!copies) return copies.status();
  const std::string shape = times(mib(sh.copy_bytes), sh.copy_reps);
  struct CopyRow {
    const char* what;
    double value;
    const char* key;
    std::optional<double> CalibrationFigures::*field;
  };
  const CopyRow copy_rows[] = {
      {"H2D pinned", copies->h2d_pinned, "h2d_pinned_gbps", &CalibrationFigures::h2d_pinned_gbps},
      {"H2D pageable", copies->h2d_pageable, "h2d_pageable_gbps",
       &CalibrationFigures::h2d_pageable_gbps},
      {"D2H pinned", copies->d2h_pinned, "d2h_pinned_gbps", &CalibrationFigures::d2h_pinned_gbps},
      {"D2H pageable", copies->d2h_pageable, "", nullptr},
      {"device memory (D2D copy)", copies->d2d, "mem_gbps", &CalibrationFigures::mem_gbps},
  };
  for (const CopyRow& c : copy_rows) {
    CalibrationRow r = row(c.what, shape, "GB/s", c.key);
    if (c.value > 0) r.value = c.value;
    r.note = c.field == nullptr ? "informational: the planner has no key for it"
             : c.field == &CalibrationFigures::mem_gbps
                 ? "read + written bytes / s"
                 : "cudaMemcpyAsync on one stream, CUDA events";
    if (c.field != nullptr && c.value > 0) run.figures.*c.field = c.value;
    run.rows.push_back(std::move(r));
  }

  auto device = make_cuda_device(0);
  if (!device) return device.status();
  // The rate the planner reads as bf16_tflops is its compute dtype's: bf16 from SM 8.0, f16 on
  // Turing's tensor cores, f32 on the GTX 16xx (docs/hardware.md, "Features and compute dtype").
  const DType compute = spec.compute_dtype();
  const DType dtypes[] = {DType::f32, DType::f16, DType::bf16, DType::f8_e4m3, DType::i8};
  const std::string gshape = gemm_shape(sh.gpu_tokens, sh.gpu_nk, sh.gpu_nk);
  for (DType t : dtypes) {
    std::string what = "GEMM ";
    what += dtype_name(t);
    what += " weights";
    const bool is_compute = t == compute;
    // dmem's CUDA linear has no fp8 GEMM yet (fp8 weights run the reference kernel): its rate
    // says nothing about fp8 tensor cores, so it is shown and not written.
    const bool is8 = false;
    CalibrationRow r = row(std::move(what), gshape, "TFLOPS",
                           is_compute ? "bf16_tflops"
                           : is8      ? "fp8_tflops"
                                      : "");
    auto tf = measure_device_linear_tflops(**device, t, sh.gpu_tokens, sh.gpu_nk, sh.gpu_nk,
                                           sh.gemm_reps);
    if (tf && *tf > 0) {
      r.value = *tf;
      r.note = "dmem's CUDA linear, f32 activations";
      if (is_compute) run.figures.bf16_tflops = *tf;
      if (is8) run.figures.fp8_tflops = *tf;
      if (t == DType::f8_e4m3)
        r.note += spec.has_fp8() ? " (reference kernel, no fp8 GEMM yet: fp8_tflops not written)"
                                 : " (no fp8 tensor cores below SM 8.9: fp8_tflops not written)";
    } else if (!tf && tf.status().code() == Errc::unsupported) {
      r.key.clear();
      r.note = "not supported by this device's linear";
    } else {
      r.key.clear();
      r.note = tf ? "too fast to time" : tf.status().message();
    }
    run.rows.push_back(std::move(r));
  }
  return Status::ok();
}

}  // namespace

Result<CalibrationRun> run_calibration(const CalibrateOptions& options) noexcept {
  const Shapes sh = shapes_for(options.quick);
  CalibrationRun run;
  run.figures.device = "CPU: ";
  run.figures.device += std::to_string(cpu_cores());
  run.figures.device += " cores";
  std::optional<CudaDeviceInfo> gpu;
  if (options.cuda) {
    auto found = first_cuda_device();
    if (!found) return found.status();
    gpu = std::move(*found);
  }
  measure_host(sh, run);
  DMEM_TRY(measure_disk(sh, options.model_files, run));
  if (gpu) DMEM_TRY(measure_cuda(sh, *gpu, run));
  return run;
}

}  // namespace dmem::detail
