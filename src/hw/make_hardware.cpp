// make_hardware: probe (or nothing), then preset, then explicit values, then calibration.
#include <cctype>

#include "hw/hw_detail.hpp"

namespace dmem {
inline namespace v1 {

namespace {

constexpr std::uint32_t kUnprobedCores = 8;

std::string alnum_lower(std::string_view s) {
  std::string out;
  for (char c : s)
    if (std::isalnum(static_cast<unsigned char>(c)))
      out += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

std::string preset_list() {
  std::string out;
  for (const auto& p : gpu_presets()) out += (out.empty() ? "" : ", ") + p.id;
  return out;
}

// A GPU described only by --vram: an Ampere-class card (sm_86, PCIe 4.0 x16, RTX 3090 figures),
// so no feature is assumed that an unknown card may lack.
GpuSpec generic_gpu() {
  for (const auto& p : gpu_presets())
    if (p.id == "rtx3090") {
      GpuSpec g = p.spec;
      g.name =
          "GPU described by --vram only (RTX 3090 figures assumed; give --gpu PRESET or run "
          "dmem calibrate)";
      return g;
    }
  return {};
}

}  // namespace

Result<Hardware> make_hardware(const HardwareOptions& o) noexcept {
  Hardware hw;
  std::string cache = o.cache_dir.value_or(std::string());
  if (o.probe) {
    auto probed = probe_hardware(cache);
    if (!probed) return probed.status();
    hw = std::move(*probed);
  } else {
    hw.source = "no probe";
    hw.cache_dir = cache.empty() ? detail::default_cache_dir() : cache;
    hw.cpu_cores = kUnprobedCores;
    hw.cpu_gflops = detail::default_cpu_gflops(hw.cpu_cores);
  }

  if (o.gpu) {
    const std::string want = alnum_lower(*o.gpu);
    if (want == "none" || want == "cpu") {
      if (o.gpus && *o.gpus > 0)
        return Status(Errc::invalid_argument,
                      "--gpu none describes a CPU-only machine but --gpus is " +
                          std::to_string(*o.gpus))
            .with_rule("hardware.gpus")
            .with_hint("drop --gpus or name a GPU preset");
      if (o.vram && *o.vram != 0)
        return Status(Errc::invalid_argument,
                      "--gpu none describes a CPU-only machine but --vram was given")
            .with_rule("hardware.gpus")
            .with_hint("drop --vram or name a GPU preset");
      hw.gpus.clear();
      hw.source += " + cpu-only";
    } else {
      const GpuPreset* found = nullptr;
      for (const auto& p : gpu_presets())
        if (alnum_lower(p.id) == want) found = &p;
      if (found == nullptr)
        return Status(Errc::not_found, "unknown GPU preset '" + *o.gpu + "'")
            .with_rule("hardware.preset")
            .with_hint("presets: " + preset_list() + ", or 'none' for a CPU-only machine");
      // A named GPU and zero GPUs contradict each other; a silent CPU-only plan would mislead.
      if (o.gpus && *o.gpus == 0)
        return Status(Errc::invalid_argument, "--gpu " + *o.gpu + " names a GPU but --gpus is 0")
            .with_rule("hardware.gpus")
            .with_hint("drop --gpus 0, or use --gpu none for a CPU-only machine");
      const std::size_t n = o.gpus ? *o.gpus : (hw.gpus.empty() ? 1 : hw.gpus.size());
      hw.gpus.assign(n, found->spec);
      hw.source += " + preset " + found->id;
    }
  } else if (o.gpus) {
    if (*o.gpus == 0 && o.vram && *o.vram != 0)
      return Status(Errc::invalid_argument,
                    "--gpus 0 describes a CPU-only machine but --vram was given")
          .with_rule("hardware.gpus")
          .with_hint("drop --vram, or give the number of GPUs (at least 1)");
    if (*o.gpus > 0 && hw.gpus.empty() && !o.vram)
      return Status(Errc::invalid_argument,
                    "--gpus " + std::to_string(*o.gpus) + " but no GPU is probed or described")
          .with_rule("hardware.gpus")
          .with_hint("add --gpu PRESET (" + preset_list() + ") or --vram SIZE");
    const GpuSpec model = hw.gpus.empty() ? generic_gpu() : hw.gpus.front();
    hw.gpus.assign(*o.gpus, model);
  }

  if (o.vram && *o.vram == 0) {
    // No VRAM means no GPU to plan for: CPU-only, as --gpu none, not a GPU nothing fits on.
    if ((o.gpus && *o.gpus > 0) || (o.gpu && !hw.gpus.empty()))
      return Status(Errc::invalid_argument,
                    "--vram 0 describes a CPU-only machine but a GPU is named (--gpu or --gpus)")
          .with_rule("hardware.gpus")
          .with_hint("drop --vram 0 to plan for the GPU, or drop --gpu/--gpus to plan CPU-only");
    hw.gpus.clear();
    hw.source += " + cpu-only (--vram 0)";
  } else if (o.vram) {
    if (hw.gpus.empty()) {
      hw.gpus.push_back(generic_gpu());
      if (o.gpus && *o.gpus > 1) hw.gpus.assign(*o.gpus, hw.gpus.front());
    }
    for (auto& g : hw.gpus) {
      g.vram_total = *o.vram;
      g.vram_free = *o.vram;
    }
  }
  if (o.ram) {
    hw.ram_available = *o.ram;
    if (hw.ram_total < *o.ram) hw.ram_total = *o.ram;
  }
  if (o.pinned_limit) hw.pinned_limit = *o.pinned_limit;
  if (o.disk) hw.disk_free = *o.disk;
  if (o.vram || o.ram || o.pinned_limit || o.disk) hw.source += " + flags";
  if (o.calibration) {
    DMEM_TRY(apply_calibration(hw, *o.calibration));
    hw.source += " + calibration";
  }
  return hw;
}

}  // namespace v1
}  // namespace dmem
