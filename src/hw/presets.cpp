// The GPU preset table. Figures are vendor spec-sheet values (docs/hardware.md lists the source of
// each): dense tensor throughput without sparsity, bf16 with FP32 accumulation (what PyTorch and
// cuBLASLt use for diffusion models), memory bandwidth in GB/s.
#include <algorithm>
#include <cctype>
#include <string>

#include "hw/hw_detail.hpp"

namespace dmem {
inline namespace v1 {

namespace {

constexpr std::uint64_t kGiB = 1024ull * 1024ull * 1024ull;
constexpr std::uint64_t kMiB = 1024ull * 1024ull;

GpuPreset preset(const char* id, const char* name, std::uint32_t major, std::uint32_t minor,
                 std::uint64_t vram, std::uint32_t gen, std::uint32_t lanes, double bf16,
                 double fp8, double mem) {
  GpuPreset p;
  p.id = id;
  p.spec.name = name;
  p.spec.cc_major = major;
  p.spec.cc_minor = minor;
  p.spec.vram_total = vram;
  p.spec.vram_free = vram;
  p.spec.pcie_gen = gen;
  p.spec.pcie_lanes = lanes;
  p.spec.bf16_tflops = bf16;
  p.spec.fp8_tflops = fp8;
  p.spec.mem_gbps = mem;
  detail::fill_transfer_defaults(p.spec);
  return p;
}

std::vector<GpuPreset> make_presets() {
  return {
      //      id              name                           cc     VRAM             PCIe    bf16
      //      fp8     GB/s
      preset("rtx3060-12", "NVIDIA GeForce RTX 3060 12GB", 8, 6, 12 * kGiB, 4, 16, 25.6, 0, 360),
      preset("rtx3090", "NVIDIA GeForce RTX 3090", 8, 6, 24 * kGiB, 4, 16, 71.0, 0, 936),
      preset("rtx4060ti-16", "NVIDIA GeForce RTX 4060 Ti 16GB", 8, 9, 16 * kGiB, 4, 8, 44.1, 88.3,
             288),
      preset("rtx4070", "NVIDIA GeForce RTX 4070", 8, 9, 12 * kGiB, 4, 16, 58.3, 116.6, 504),
      preset("rtx4080", "NVIDIA GeForce RTX 4080", 8, 9, 16 * kGiB, 4, 16, 97.5, 194.9, 717),
      preset("rtx4090", "NVIDIA GeForce RTX 4090", 8, 9, 24 * kGiB, 4, 16, 165.2, 330.3, 1008),
      preset("rtx5080", "NVIDIA GeForce RTX 5080", 12, 0, 16 * kGiB, 5, 16, 112.6, 225.1, 960),
      preset("rtx5090", "NVIDIA GeForce RTX 5090", 12, 0, 32 * kGiB, 5, 16, 209.5, 419.0, 1792),
      preset("a100-40", "NVIDIA A100 40GB", 8, 0, 40 * kGiB, 4, 16, 312.0, 0, 1555),
      preset("a100-80", "NVIDIA A100 80GB", 8, 0, 80 * kGiB, 4, 16, 312.0, 0, 2039),
      preset("h100", "NVIDIA H100 80GB HBM3", 9, 0, 80 * kGiB, 5, 16, 989.4, 1978.9, 3350),
      preset("h200", "NVIDIA H200", 9, 0, 143771 * kMiB, 5, 16, 989.4, 1978.9, 4800),
      preset("l4", "NVIDIA L4", 8, 9, 24 * kGiB, 4, 16, 121.0, 242.5, 300),
      preset("l40s", "NVIDIA L40S", 8, 9, 48 * kGiB, 4, 16, 362.1, 733.0, 864),
      // Turing has no bf16 tensor cores: the figure is fp16 (dmem computes in fp16 there).
      preset("t4", "Tesla T4", 7, 5, 16 * kGiB, 3, 16, 65.0, 0, 320),
  };
}

std::string lower_alnum(std::string_view s) {
  std::string out;
  for (char c : s)
    if (std::isalnum(static_cast<unsigned char>(c)))
      out += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

}  // namespace

const std::vector<GpuPreset>& gpu_presets() noexcept {
  static const std::vector<GpuPreset> presets = make_presets();
  return presets;
}

}  // namespace v1
}  // namespace dmem

namespace dmem::detail {

double pcie_pinned_gbps(std::uint32_t gen, std::uint32_t lanes) noexcept {
  // Effective pinned cudaMemcpy rates measured on x16 links are ~80% of the raw link rate.
  double x16 = 12.0;
  if (gen >= 5)
    x16 = 50.0;
  else if (gen == 4)
    x16 = 25.0;
  else if (gen == 3)
    x16 = 12.0;
  else if (gen > 0)
    x16 = 6.0;
  const double l = lanes == 0 ? 16.0 : static_cast<double>(std::min<std::uint32_t>(lanes, 16));
  return x16 * l / 16.0;
}

void fill_transfer_defaults(GpuSpec& gpu) noexcept {
  const double pinned = pcie_pinned_gbps(gpu.pcie_gen, gpu.pcie_lanes);
  if (gpu.h2d_pinned_gbps <= 0) gpu.h2d_pinned_gbps = pinned;
  if (gpu.h2d_pageable_gbps <= 0) gpu.h2d_pageable_gbps = gpu.h2d_pinned_gbps / 2.0;
  if (gpu.d2h_pinned_gbps <= 0) gpu.d2h_pinned_gbps = gpu.h2d_pinned_gbps;
}

const GpuPreset* match_preset(std::string_view device_name, std::uint64_t total_bytes) noexcept {
  const std::string n = lower_alnum(device_name);
  auto has = [&](std::string_view s) { return n.find(s) != std::string::npos; };
  const char* id = nullptr;
  const std::uint64_t gib = 1024ull * 1024ull * 1024ull;
  if (has("rtx5090"))
    id = "rtx5090";
  else if (has("rtx5080"))
    id = "rtx5080";
  else if (has("rtx4090"))
    id = "rtx4090";
  else if (has("rtx4080"))
    id = "rtx4080";
  else if (has("rtx4070") && !has("ti") && !has("super"))
    id = "rtx4070";
  else if (has("rtx4060ti") && total_bytes > 12 * gib)
    id = "rtx4060ti-16";
  else if (has("rtx3090"))
    id = "rtx3090";
  else if (has("rtx3060") && !has("ti") && total_bytes > 10 * gib)
    id = "rtx3060-12";
  else if (has("a100"))
    id = total_bytes > 48 * gib ? "a100-80" : "a100-40";
  else if (has("h100"))
    id = "h100";
  else if (has("h200"))
    id = "h200";
  else if (has("l40s"))
    id = "l40s";
  else if (n == "nvidial4")
    id = "l4";
  else if (has("teslat4") || n == "nvidiat4")
    id = "t4";
  if (id == nullptr) return nullptr;
  for (const auto& p : gpu_presets())
    if (p.id == id) return &p;
  return nullptr;
}

double default_cpu_gflops(std::uint32_t cores) noexcept {
  return 50.0 * static_cast<double>(cores == 0 ? 1 : cores);
}

}  // namespace dmem::detail
