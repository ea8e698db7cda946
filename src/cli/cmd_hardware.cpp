// `dmem hardware`: what dmem sees of this machine, or of the one the flags describe.
#include <cstdio>
#include <string>

#include "cli/commands.hpp"
#include "cli/machine_flags.hpp"
#include "cli/output.hpp"
#include "cli/table.hpp"
#include "core/text_escape.hpp"
#include "dmem/units.hpp"

namespace dmem::cli {

namespace {

constexpr const char* kHelp = R"(usage: dmem hardware [flags] [--json] [--presets]

Prints the GPUs (compute capability, VRAM, PCIe link, throughput, host<->device bandwidth), the
RAM dmem may use (MemAvailable capped by cgroup limits), the pinned limit, free disk at the cache
directory and the CPU, as probed or as described by the flags below.

  --json      machine-readable output
  --presets   list the GPU presets instead)";

std::string num(double v, int decimals = 1) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.*f", decimals, v);
  return buf;
}

Table gpu_table() {
  return Table({"#", "gpu", "sm", "VRAM", "free", "PCIe", "bf16 TFLOPS", "fp8 TFLOPS", "mem GB/s",
                "H2D pinned GB/s", "H2D pageable GB/s"},
               {true, false, false, true, true, false, true, true, true, true, true});
}

void add_gpu(Table& t, const std::string& id, const GpuSpec& g) {
  t.add({id, g.name, std::to_string(g.cc_major) + "." + std::to_string(g.cc_minor),
         format_bytes(g.vram_total), format_bytes(g.vram_free),
         std::to_string(g.pcie_gen) + ".0 x" + std::to_string(g.pcie_lanes), num(g.bf16_tflops),
         g.fp8_tflops > 0 ? num(g.fp8_tflops) : "-", num(g.mem_gbps, 0), num(g.h2d_pinned_gbps),
         num(g.h2d_pageable_gbps)});
}

}  // namespace

int run_hardware(const Args& args) {
  po::options_description desc("flags");
  desc.add_options()("help,h", "this text")("json", po::bool_switch(), "JSON output")(
      "presets", po::bool_switch(), "list GPU presets");
  add_hardware_options(desc);
  po::variables_map vm;
  bool help_shown = false;
  if (Status s = parse_command(args, desc, nullptr, kHelp, vm, help_shown); !s)
    return fail("hardware", s.to_string());
  if (help_shown) return kExitOk;
  if (vm["presets"].as<bool>()) {
    if (vm["json"].as<bool>()) {
      nlohmann::json j = nlohmann::json::array();
      for (const auto& p : gpu_presets()) {
        Hardware h;
        h.gpus.push_back(p.spec);
        auto gj = hardware_json(h)["gpus"][0];
        gj["id"] = p.id;
        j.push_back(gj);
      }
      print_json(j);
      return 0;
    }
    Table t = gpu_table();
    for (const auto& p : gpu_presets()) add_gpu(t, p.id, p.spec);
    std::fputs(t.render().c_str(), stdout);
    return 0;
  }
  auto ho = read_hardware_options(vm);
  if (!ho) return fail("hardware", ho.status().to_string());
  auto hw = make_hardware(*ho);
  if (!hw) return fail("hardware", hw.status().to_string());
  if (vm["json"].as<bool>()) {
    print_json(hardware_json(*hw));
    return 0;
  }
  std::printf("machine (%s)\n", detail::escape_text(hw->source).c_str());
  if (hw->gpus.empty()) {
    std::printf("  GPUs    none: a CPU-only machine\n");
  } else {
    Table t = gpu_table();
    for (std::size_t i = 0; i < hw->gpus.size(); ++i) add_gpu(t, std::to_string(i), hw->gpus[i]);
    std::fputs(t.render("  ").c_str(), stdout);
  }
  std::printf("  RAM     %s available of %s total\n", format_bytes(hw->ram_available).c_str(),
              format_bytes(hw->ram_total).c_str());
  std::printf("  pinned  %s%s\n", format_bytes(effective_pinned_limit(*hw)).c_str(),
              hw->pinned_limit == 0 ? " (half the available RAM; --pinned-limit to change)" : "");
  std::printf("  disk    %s free at %s · read %s GB/s\n", format_bytes(hw->disk_free).c_str(),
              detail::escape_text(hw->cache_dir).c_str(), num(hw->disk_read_gbps).c_str());
  std::printf("  CPU     %u cores · %s GFLOPS%s\n", hw->cpu_cores, num(hw->cpu_gflops, 0).c_str(),
              ho->calibration ? "" : " (assumed; dmem calibrate measures it)");
  return 0;
}

}  // namespace dmem::cli
