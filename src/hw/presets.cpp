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
constexpr double kPageableMaxGbps = 11.0;

GpuPreset preset(const char* id, const char* name, std::uint32_t major, std::uint32_t minor,
                 std::uint64_t vram, std::uint32_t gen, std::uint32_t lanes, double bf16,
                 double fp8, double mem, bool tensor_cores = true) {
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
  p.spec.tensor_cores = tensor_cores;
  detail::fill_transfer_defaults(p.spec);
  return p;
}

// The 16-bit tensor throughput column is bf16 with FP32 accumulation from Ampere on, fp16 with
// FP32 accumulation on Turing (no bf16), and plain FP32 on the GTX 16xx (no tensor cores; dmem
// computes in fp32 there). GeForce cards run FP32 accumulation at half their FP16-accumulate
// rate (512 FLOP/clock/SM); datacenter and workstation cards at the full rate (1024).
// Laptop clocks depend on the maker's power limit: the figures use NVIDIA's boost clock.
std::vector<GpuPreset> make_presets() {
  return {
      // Turing without tensor cores (GTX 16xx): FP32 figures.
      preset("gtx1650", "NVIDIA GeForce GTX 1650", 7, 5, 4 * kGiB, 3, 16, 2.98, 0, 128, false),
      preset("gtx1660-super", "NVIDIA GeForce GTX 1660 SUPER", 7, 5, 6 * kGiB, 3, 16, 5.03, 0, 336,
             false),
      preset("gtx1660ti", "NVIDIA GeForce GTX 1660 Ti", 7, 5, 6 * kGiB, 3, 16, 5.44, 0, 288, false),
      // Turing RTX: fp16 with FP32 accumulation.
      preset("rtx2060", "NVIDIA GeForce RTX 2060", 7, 5, 6 * kGiB, 3, 16, 25.8, 0, 336),
      preset("rtx2060-super", "NVIDIA GeForce RTX 2060 SUPER", 7, 5, 8 * kGiB, 3, 16, 28.7, 0, 448),
      preset("rtx2070", "NVIDIA GeForce RTX 2070", 7, 5, 8 * kGiB, 3, 16, 29.9, 0, 448),
      preset("rtx2070-super", "NVIDIA GeForce RTX 2070 SUPER", 7, 5, 8 * kGiB, 3, 16, 36.2, 0, 448),
      preset("rtx2080", "NVIDIA GeForce RTX 2080", 7, 5, 8 * kGiB, 3, 16, 40.3, 0, 448),
      preset("rtx2080-super", "NVIDIA GeForce RTX 2080 SUPER", 7, 5, 8 * kGiB, 3, 16, 44.6, 0, 496),
      preset("rtx2080ti", "NVIDIA GeForce RTX 2080 Ti", 7, 5, 11 * kGiB, 3, 16, 53.8, 0, 616),
      preset("t4", "Tesla T4", 7, 5, 16 * kGiB, 3, 16, 65.0, 0, 320),
      // Ampere GeForce and laptops.
      preset("rtx3050", "NVIDIA GeForce RTX 3050", 8, 6, 8 * kGiB, 4, 8, 18.2, 0, 224),
      preset("rtx3050-laptop", "NVIDIA GeForce RTX 3050 Laptop GPU", 8, 6, 4 * kGiB, 4, 8, 12.3, 0,
             192),
      preset("rtx3060-laptop", "NVIDIA GeForce RTX 3060 Laptop GPU", 8, 6, 6 * kGiB, 4, 16, 21.9, 0,
             336),
      preset("rtx3060-12", "NVIDIA GeForce RTX 3060 12GB", 8, 6, 12 * kGiB, 4, 16, 25.6, 0, 360),
      preset("rtx3060ti", "NVIDIA GeForce RTX 3060 Ti", 8, 6, 8 * kGiB, 4, 16, 32.4, 0, 448),
      preset("rtx3070", "NVIDIA GeForce RTX 3070", 8, 6, 8 * kGiB, 4, 16, 40.6, 0, 448),
      preset("rtx3070-laptop", "NVIDIA GeForce RTX 3070 Laptop GPU", 8, 6, 8 * kGiB, 4, 16, 32.0, 0,
             448),
      preset("rtx3070ti", "NVIDIA GeForce RTX 3070 Ti", 8, 6, 8 * kGiB, 4, 16, 43.5, 0, 608),
      preset("rtx3080", "NVIDIA GeForce RTX 3080", 8, 6, 10 * kGiB, 4, 16, 59.5, 0, 760),
      preset("rtx3080-laptop", "NVIDIA GeForce RTX 3080 Laptop GPU", 8, 6, 16 * kGiB, 4, 16, 38.0,
             0, 448),
      preset("rtx3080ti", "NVIDIA GeForce RTX 3080 Ti", 8, 6, 12 * kGiB, 4, 16, 68.2, 0, 912),
      preset("rtx3090", "NVIDIA GeForce RTX 3090", 8, 6, 24 * kGiB, 4, 16, 71.0, 0, 936),
      preset("rtx3090ti", "NVIDIA GeForce RTX 3090 Ti", 8, 6, 24 * kGiB, 4, 16, 80.0, 0, 1008),
      // Ampere workstation and datacenter (full-rate FP32 accumulation).
      preset("rtx-a4000", "NVIDIA RTX A4000", 8, 6, 16 * kGiB, 4, 16, 76.7, 0, 448),
      preset("rtx-a5000", "NVIDIA RTX A5000", 8, 6, 24 * kGiB, 4, 16, 111.1, 0, 768),
      preset("rtx-a6000", "NVIDIA RTX A6000", 8, 6, 48 * kGiB, 4, 16, 154.8, 0, 768),
      preset("a10", "NVIDIA A10", 8, 6, 24 * kGiB, 4, 16, 125.0, 0, 600),
      preset("a100-40", "NVIDIA A100 40GB", 8, 0, 40 * kGiB, 4, 16, 312.0, 0, 1555),
      preset("a100-80", "NVIDIA A100 80GB", 8, 0, 80 * kGiB, 4, 16, 312.0, 0, 2039),
      // Ada GeForce and laptops.
      preset("rtx4050-laptop", "NVIDIA GeForce RTX 4050 Laptop GPU", 8, 9, 6 * kGiB, 4, 8, 21.0,
             42.0, 192),
      preset("rtx4060", "NVIDIA GeForce RTX 4060", 8, 9, 8 * kGiB, 4, 8, 30.2, 60.5, 272),
      preset("rtx4060-laptop", "NVIDIA GeForce RTX 4060 Laptop GPU", 8, 9, 8 * kGiB, 4, 8, 29.1,
             58.2, 256),
      preset("rtx4060ti", "NVIDIA GeForce RTX 4060 Ti", 8, 9, 8 * kGiB, 4, 8, 44.1, 88.3, 288),
      preset("rtx4060ti-16", "NVIDIA GeForce RTX 4060 Ti 16GB", 8, 9, 16 * kGiB, 4, 8, 44.1, 88.3,
             288),
      preset("rtx4070", "NVIDIA GeForce RTX 4070", 8, 9, 12 * kGiB, 4, 16, 58.3, 116.6, 504),
      preset("rtx4070-laptop", "NVIDIA GeForce RTX 4070 Laptop GPU", 8, 9, 8 * kGiB, 4, 8, 40.1,
             80.2, 256),
      preset("rtx4070-super", "NVIDIA GeForce RTX 4070 SUPER", 8, 9, 12 * kGiB, 4, 16, 71.0, 141.9,
             504),
      preset("rtx4070ti", "NVIDIA GeForce RTX 4070 Ti", 8, 9, 12 * kGiB, 4, 16, 80.2, 160.4, 504),
      preset("rtx4070ti-super", "NVIDIA GeForce RTX 4070 Ti SUPER", 8, 9, 16 * kGiB, 4, 16, 88.2,
             176.4, 672),
      preset("rtx4080", "NVIDIA GeForce RTX 4080", 8, 9, 16 * kGiB, 4, 16, 97.5, 194.9, 717),
      preset("rtx4080-laptop", "NVIDIA GeForce RTX 4080 Laptop GPU", 8, 9, 12 * kGiB, 4, 16, 67.7,
             135.4, 432),
      preset("rtx4080-super", "NVIDIA GeForce RTX 4080 SUPER", 8, 9, 16 * kGiB, 4, 16, 104.4, 208.9,
             736),
      preset("rtx4090", "NVIDIA GeForce RTX 4090", 8, 9, 24 * kGiB, 4, 16, 165.2, 330.3, 1008),
      preset("rtx4090-laptop", "NVIDIA GeForce RTX 4090 Laptop GPU", 8, 9, 16 * kGiB, 4, 16, 79.4,
             158.8, 576),
      // Ada workstation and datacenter.
      preset("rtx6000-ada", "NVIDIA RTX 6000 Ada Generation", 8, 9, 48 * kGiB, 4, 16, 364.2, 728.5,
             960),
      preset("l4", "NVIDIA L4", 8, 9, 24 * kGiB, 4, 16, 121.0, 242.5, 300),
      preset("l40s", "NVIDIA L40S", 8, 9, 48 * kGiB, 4, 16, 362.1, 733.0, 864),
      // Hopper.
      preset("h100-pcie", "NVIDIA H100 PCIe", 9, 0, 80 * kGiB, 5, 16, 756.0, 1513.0, 2000),
      preset("h100", "NVIDIA H100 80GB HBM3", 9, 0, 80 * kGiB, 5, 16, 989.4, 1978.9, 3350),
      preset("h200", "NVIDIA H200", 9, 0, 143771 * kMiB, 5, 16, 989.4, 1978.9, 4800),
      // Blackwell.
      preset("b200", "NVIDIA B200", 10, 0, 180 * kGiB, 5, 16, 2250.0, 4500.0, 8000),
      preset("rtx5060", "NVIDIA GeForce RTX 5060", 12, 0, 8 * kGiB, 5, 8, 38.4, 76.7, 448),
      preset("rtx5060ti-16", "NVIDIA GeForce RTX 5060 Ti 16GB", 12, 0, 16 * kGiB, 5, 8, 47.4, 94.8,
             448),
      preset("rtx5070", "NVIDIA GeForce RTX 5070", 12, 0, 12 * kGiB, 5, 16, 61.7, 123.5, 672),
      preset("rtx5070ti", "NVIDIA GeForce RTX 5070 Ti", 12, 0, 16 * kGiB, 5, 16, 87.9, 175.8, 896),
      preset("rtx5080", "NVIDIA GeForce RTX 5080", 12, 0, 16 * kGiB, 5, 16, 112.6, 225.1, 960),
      preset("rtx5080-laptop", "NVIDIA GeForce RTX 5080 Laptop GPU", 12, 0, 16 * kGiB, 5, 16, 70.2,
             140.5, 896),
      preset("rtx5090", "NVIDIA GeForce RTX 5090", 12, 0, 32 * kGiB, 5, 16, 209.5, 419.0, 1792),
      preset("rtx5090-laptop", "NVIDIA GeForce RTX 5090 Laptop GPU", 12, 0, 24 * kGiB, 5, 16, 90.7,
             181.4, 896),
      preset("rtx-pro-6000", "NVIDIA RTX PRO 6000 Blackwell", 12, 0, 96 * kGiB, 5, 16, 503.8,
             1007.6, 1792),
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
  // Pageable copies are staged by the driver through a pinned bounce buffer with a host memcpy:
  // half the link, and never more than one memcpy thread moves (~11 GB/s measured).
  if (gpu.h2d_pageable_gbps <= 0)
    gpu.h2d_pageable_gbps = std::min(gpu.h2d_pinned_gbps / 2.0, kPageableMaxGbps);
  if (gpu.d2h_pinned_gbps <= 0) gpu.d2h_pinned_gbps = gpu.h2d_pinned_gbps;
}

const GpuPreset* match_preset(std::string_view device_name, std::uint64_t total_bytes) noexcept {
  // The preset whose marketing name (without the vendor and the memory size) is the longest
  // part of the device's name; among equals (4060 Ti 8/16 GB, A100 40/80 GB) the one whose
  // memory is closest. "RTX 4070 Ti SUPER" so never reads as "RTX 4070".
  const std::string n = lower_alnum(device_name);
  auto key = [](const std::string& name) {
    // Words a device name does not carry: the vendor, the memory size ("12GB"), "HBM3".
    std::string kept;
    std::size_t i = 0;
    while (i < name.size()) {
      const std::size_t j = std::min(name.find(' ', i), name.size());
      const std::string w = name.substr(i, j - i);
      const bool size = w.size() > 2 && w.compare(w.size() - 2, 2, "GB") == 0 &&
                        std::all_of(w.begin(), w.end() - 2, [](char c) {
                          return std::isdigit(static_cast<unsigned char>(c)) != 0;
                        });
      if (!size && w != "NVIDIA" && w != "GeForce" && w != "Tesla" && w != "HBM3") kept += w;
      i = j + 1;
    }
    return lower_alnum(kept);
  };
  const GpuPreset* best = nullptr;
  std::size_t best_len = 0;
  std::uint64_t best_gap = 0;
  for (const auto& p : gpu_presets()) {
    const std::string k = key(p.spec.name);
    if (k.empty() || n.find(k) == std::string::npos) continue;
    // A laptop GPU is never its desktop namesake, and the reverse.
    if ((n.find("laptop") != std::string::npos) != (k.find("laptop") != std::string::npos))
      continue;
    const std::uint64_t v = p.spec.vram_total;
    const std::uint64_t gap = v > total_bytes ? v - total_bytes : total_bytes - v;
    if (k.size() > best_len || (k.size() == best_len && gap < best_gap)) {
      best = &p;
      best_len = k.size();
      best_gap = gap;
    }
  }
  // An exact name match ("nvidia l4") is required for short keys that other names contain.
  if (best != nullptr && best_len <= 2 && key(std::string(device_name)) != key(best->spec.name))
    return nullptr;
  return best;
}

double default_cpu_gflops(std::uint32_t cores) noexcept {
  return 50.0 * static_cast<double>(cores == 0 ? 1 : cores);
}

}  // namespace dmem::detail
