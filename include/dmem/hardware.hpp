// Hardware: the machine a plan is made for, probed or described by flags, presets and calibration.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "dmem/dtype.hpp"
#include "dmem/status.hpp"

namespace dmem {
inline namespace v1 {

struct GpuSpec {
  std::string name;            ///< "NVIDIA GeForce RTX 5090" or the preset id
  std::uint32_t cc_major = 0;  ///< compute capability
  std::uint32_t cc_minor = 0;
  std::uint64_t vram_total = 0;  ///< bytes
  std::uint64_t vram_free = 0;   ///< bytes usable now (probe) or = total (preset)
  std::uint32_t pcie_gen = 4;
  std::uint32_t pcie_lanes = 16;
  double bf16_tflops = 0;      ///< dense bf16 tensor-core throughput
  double fp8_tflops = 0;       ///< dense fp8; 0 when the device has no fp8 tensor cores
  double mem_gbps = 0;         ///< device memory bandwidth, GB/s
  double h2d_pinned_gbps = 0;  ///< host->device from pinned memory, GB/s (preset: from PCIe gen)
  double h2d_pageable_gbps = 0;
  double d2h_pinned_gbps = 0;
  bool tensor_cores = true;  ///< false on the GTX 16xx (Turing without tensor cores)

  [[nodiscard]] std::uint32_t sm() const noexcept { return cc_major * 10 + cc_minor; }
  /// bf16 tensor cores exist from SM 8.0 (Ampere) on.
  [[nodiscard]] bool has_bf16() const noexcept { return sm() >= 80; }
  /// fp8 tensor cores exist from SM 8.9 (Ada) on.
  [[nodiscard]] bool has_fp8() const noexcept { return sm() >= 89; }
  /// int8 tensor cores exist from SM 7.2 on, on cards that have tensor cores at all.
  [[nodiscard]] bool has_int8_tensor_cores() const noexcept { return tensor_cores && sm() >= 72; }
  /// The dtype dmem computes in: bf16 where it exists, else fp16 on tensor cores, else fp32
  /// (the GTX 16xx produce NaNs in fp16: AUTOMATIC1111's wiki asks for --no-half there).
  [[nodiscard]] DType compute_dtype() const noexcept {
    return has_bf16() ? DType::bf16 : (tensor_cores ? DType::f16 : DType::f32);
  }
};

struct Hardware {
  std::vector<GpuSpec> gpus;        ///< empty: a CPU-only machine
  std::uint64_t ram_total = 0;      ///< bytes
  std::uint64_t ram_available = 0;  ///< bytes dmem may use (MemAvailable, capped by cgroup limits)
  std::uint64_t pinned_limit =
      0;                        ///< bytes of page-locked memory allowed; 0 = half of ram_available
  std::uint64_t disk_free = 0;  ///< bytes free at cache_dir
  std::string cache_dir;        ///< where a disk tier may write
  double disk_read_gbps = 2.0;  ///< sequential read of checkpoint files
  double cpu_gflops = 0;        ///< dense bf16/f32 GEMM throughput of the host
  /// Factor on the planner's activation model (calibration key activation_scale, folded from
  /// measured runs; 1 = the model as documented). --activation-gib overrides both.
  double activation_scale = 1.0;
  std::uint32_t cpu_cores = 0;
  bool probed = false;  ///< true when measured on this machine
  std::string source;   ///< "probe", "preset rtx4090", "flags" ... for reports
};

/// A named GPU from the preset table.
struct GpuPreset {
  std::string id;  ///< "rtx4090"
  GpuSpec spec;
};

[[nodiscard]] const std::vector<GpuPreset>& gpu_presets() noexcept;

/// What a user may say about the machine; unset fields are probed (or defaulted when
/// `probe` is false).
struct HardwareOptions {
  bool probe = true;                  ///< start from this machine's probe
  std::optional<std::string> gpu;     ///< preset id ("rtx4090") or "none" for CPU-only
  std::optional<std::uint32_t> gpus;  ///< number of identical GPUs
  std::optional<std::uint64_t> vram;  ///< per GPU, bytes
  std::optional<std::uint64_t> ram;   ///< available RAM, bytes
  std::optional<std::uint64_t> pinned_limit;
  std::optional<std::uint64_t> disk;
  std::optional<std::string> cache_dir;
  std::optional<std::string> calibration;  ///< path of a calibration JSON file
};

/// Probes this machine: CUDA devices (name, compute capability, total/free memory), RAM
/// available including cgroup v1/v2 limits, free disk at the cache directory, CPU cores.
[[nodiscard]] Result<Hardware> probe_hardware(std::string_view cache_dir = {}) noexcept;

/// Builds the hardware description from options: probe (or nothing), then preset, then explicit
/// values, then calibration. Unknown preset → Errc::not_found listing the presets.
[[nodiscard]] Result<Hardware> make_hardware(const HardwareOptions& options) noexcept;

/// Reads a calibration file (measured bandwidths and throughput) and applies it.
[[nodiscard]] Status apply_calibration(Hardware& hardware, std::string_view path) noexcept;

}  // namespace v1
}  // namespace dmem
