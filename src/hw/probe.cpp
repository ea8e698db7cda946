// probe_hardware: what this machine has, as dmem may use it.
#include "backend/cuda/cuda_probe.hpp"
#include "hw/hw_detail.hpp"

namespace dmem {
inline namespace v1 {

namespace {

// A device with no preset: throughput by architecture generation, so estimates stay in the
// right order of magnitude (docs/hardware.md, "Unknown devices").
void fill_unknown_device(GpuSpec& g) {
  const std::uint32_t sm = g.sm();
  if (sm >= 100) {
    g.bf16_tflops = 200;
    g.fp8_tflops = 400;
    g.mem_gbps = 1500;
  } else if (sm >= 90) {
    g.bf16_tflops = 700;
    g.fp8_tflops = 1400;
    g.mem_gbps = 3000;
  } else if (sm >= 89) {
    g.bf16_tflops = 80;
    g.fp8_tflops = 160;
    g.mem_gbps = 500;
  } else if (sm >= 80) {
    g.bf16_tflops = 60;
    g.mem_gbps = 700;
  } else if (sm >= 75) {
    g.bf16_tflops = 30;
    g.mem_gbps = 400;
  } else {
    g.bf16_tflops = 10;
    g.mem_gbps = 300;
  }
}

}  // namespace

Result<Hardware> probe_hardware(std::string_view cache_dir) noexcept {
  Hardware hw;
  hw.probed = true;
  hw.source = "probe";
  for (const auto& d : detail::cuda_devices()) {
    GpuSpec g;
    g.name = d.name;
    g.cc_major = static_cast<std::uint32_t>(d.cc_major);
    g.cc_minor = static_cast<std::uint32_t>(d.cc_minor);
    g.vram_total = d.total_bytes;
    g.vram_free = d.free_bytes;
    if (const GpuPreset* p = detail::match_preset(d.name, d.total_bytes)) {
      g.pcie_gen = p->spec.pcie_gen;
      g.pcie_lanes = p->spec.pcie_lanes;
      g.bf16_tflops = p->spec.bf16_tflops;
      g.fp8_tflops = p->spec.fp8_tflops;
      g.mem_gbps = p->spec.mem_gbps;
    } else {
      fill_unknown_device(g);
    }
    // The link the device actually trained at beats the preset's nominal one.
    if (d.pci_gen > 0) g.pcie_gen = static_cast<std::uint32_t>(d.pci_gen);
    if (d.pci_width > 0) g.pcie_lanes = static_cast<std::uint32_t>(d.pci_width);
    detail::fill_transfer_defaults(g);
    hw.gpus.push_back(std::move(g));
  }
  if (auto ram = detail::read_ram(detail::SystemPaths{})) {
    hw.ram_total = ram->total;
    hw.ram_available = ram->available;
    if (!ram->limited_by.empty()) hw.source += " (RAM limited by " + ram->limited_by + ")";
  }
  hw.cache_dir = cache_dir.empty() ? detail::default_cache_dir() : std::string(cache_dir);
  if (auto free = detail::disk_free_at(hw.cache_dir)) hw.disk_free = *free;
  hw.cpu_cores = detail::cpu_cores();
  hw.cpu_gflops = detail::default_cpu_gflops(hw.cpu_cores);
  return hw;
}

}  // namespace v1
}  // namespace dmem
