// `dmem calibrate`: measure this machine (or fold a run's trace) and write the calibration file
// that `dmem plan --calibration` reads. The measuring is src/hw/calibrate*.cpp; the fold is
// src/hw/calibrate_fold.cpp.
#include <cstdio>
#include <set>
#include <string>

#include "backend/cuda/cuda_device.hpp"
#include "backend/cuda/cuda_probe.hpp"
#include "cli/commands.hpp"
#include "cli/machine_flags.hpp"
#include "cli/output.hpp"
#include "cli/table.hpp"
#include "core/text_escape.hpp"
#include "dmem/model.hpp"
#include "format/file_io.hpp"
#include "hw/calibrate.hpp"

namespace dmem::cli {

namespace {

constexpr const char* kHelp =
    R"(usage: dmem calibrate [--json out.json] [--model PATH] [--device cpu|cuda] [--quick]
       dmem calibrate --from-trace t.json [--calibration in.json] --json out.json

Measures what the planner otherwise assumes and writes it as the calibration file that
`dmem plan --calibration FILE` reads (docs/hardware.md, "Calibration file"):
  host     memcpy bandwidth; OpenBLAS sgemm at 4096 x 3072 x 3072 (cpu_gflops)
  --model  read rate of the model's own files, cold (cached pages dropped first; disk_read_gbps)
           and warm
  cuda     H2D/D2H bandwidth from pinned and pageable memory (h2d_pinned_gbps,
           h2d_pageable_gbps, d2h_pinned_gbps), device copy bandwidth (mem_gbps), and GEMM
           throughput of dmem's own CUDA linear per weight dtype (bf16_tflops, fp8_tflops)
--from-trace folds the measured step time of a `dmem run --trace` file into the compute
throughput the plan assumed, and its per-phase device peaks (less the plan's weights) into
activation_scale, the factor on the activation model (a dmem run trace, whose activations are
synthetic, can only raise it), so the next plan on this machine is closer (docs/budgets.md,
"Calibration"). Keys of --calibration that nothing replaced are kept.

  --json FILE         write the calibration here (atomically; the table still prints)
  --model PATH        a checkpoint (file, folder or index) whose files are read
  --device cpu|cuda   cpu: the host only; cuda: the host and CUDA device 0 (default: cuda when a
                      GPU is present)
  --quick             smaller buffers and shapes: seconds instead of about a minute
  --from-trace FILE   fold a trace instead of measuring
  --calibration FILE  the calibration to start from (its keys are kept unless measured)
Exit status: 0 success, 2 bad input (a flag, an unreadable file, --device cuda without a GPU).)";

std::string num(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, v >= 100 ? "%.0f" : v >= 10 ? "%.1f" : "%.2f", v);
  return buf;
}

std::string render(const std::vector<detail::CalibrationRow>& rows) {
  Table t({"measurement", "size", "value", "", "calibration key", "note"},
          {false, false, true, false, false, false});
  for (const auto& r : rows)
    t.add({detail::escape_text(r.what), r.shape, r.value ? num(*r.value) : "-", r.unit,
           r.key.empty() ? "-" : r.key, detail::escape_text(r.note)});
  return t.render("  ");
}

// Every checkpoint file of the model, once each, in model order.
Result<std::vector<std::string>> model_files(const std::string& path) {
  auto model = open_model(path);
  if (!model) return model.status();
  std::vector<std::string> files;
  std::set<std::string> seen;
  for (const Component& c : model->components)
    for (const std::string& f : c.files)
      if (seen.insert(f).second) files.push_back(f);
  if (files.empty())
    return Status(
               Errc::invalid_argument,
               "'" + path + "' has no weights on disk (a built-in catalog model is headers only)")
        .with_rule("calibrate.model")
        .with_hint("give a checkpoint file or folder: --model PATH");
  return files;
}

int measure(const po::variables_map& vm, const std::string& json_path) {
  std::string device = vm.count("device") ? vm["device"].as<std::string>() : "";
  if (!device.empty() && device != "cpu" && device != "cuda")
    return fail("calibrate",
                Status(Errc::invalid_argument, "--device: '" + device + "' is not one of cpu, cuda")
                    .with_rule("cli.flag")
                    .with_hint("--device cpu or --device cuda")
                    .to_string());
  detail::CalibrateOptions options;
  options.quick = vm["quick"].as<bool>();
  std::string gpu_note;
  if (device.empty()) {
    std::string why;
    const bool found = !detail::cuda_devices(&why).empty();
    options.cuda = detail::cuda_device_compiled() && found;
    if (!options.cuda) {
      gpu_note = "no CUDA device";
      if (!why.empty()) gpu_note += " (" + why + ")";
      gpu_note += ": the host only";
    }
  } else {
    options.cuda = device == "cuda";
  }
  if (vm.count("model")) {
    auto files = model_files(vm["model"].as<std::string>());
    if (!files) return fail("calibrate", files.status().to_string());
    options.model_files = std::move(*files);
  }
  detail::CalibrationFigures base;
  if (vm.count("calibration")) {
    auto read = detail::read_calibration_figures(vm["calibration"].as<std::string>());
    if (!read) return fail("calibrate", read.status().to_string());
    base = std::move(*read);
  }
  if (!gpu_note.empty()) std::printf("%s\n", gpu_note.c_str());
  auto run = detail::run_calibration(options);
  if (!run) return fail("calibrate", run.status().to_string());
  std::printf("calibration (%s%s)\n", detail::escape_text(run->figures.device).c_str(),
              options.quick ? ", --quick" : "");
  std::fputs(render(run->rows).c_str(), stdout);
  detail::merge_figures(base, run->figures);
  if (!json_path.empty()) {
    if (Status s = detail::write_calibration(json_path, base); !s)
      return fail("calibrate", s.to_string());
    std::printf("wrote %s: dmem plan <model> --calibration %s\n",
                detail::escape_text(json_path).c_str(), detail::escape_text(json_path).c_str());
  }
  return kExitOk;
}

int fold(const po::variables_map& vm, const std::string& json_path) {
  for (const char* f : {"model", "device", "quick"}) {
    const bool given = std::string_view(f) == "quick" ? vm["quick"].as<bool>() : vm.count(f) > 0;
    if (given)
      return fail("calibrate", Status(Errc::invalid_argument,
                                      std::string("--") + f + " measures; --from-trace folds a run")
                                   .with_rule("cli.flag")
                                   .with_hint("give either --from-trace or the measuring flags")
                                   .to_string());
  }
  if (json_path.empty())
    return fail("calibrate", Status(Errc::invalid_argument, "--from-trace needs --json out.json")
                                 .with_rule("cli.flag")
                                 .with_hint("dmem calibrate --from-trace t.json --json out.json")
                                 .to_string());
  std::optional<std::string> base;
  if (vm.count("calibration")) base = vm["calibration"].as<std::string>();
  auto folded = detail::fold_trace(vm["from-trace"].as<std::string>(), base);
  if (!folded) return fail("calibrate", folded.status().to_string());
  for (const std::string& line : folded->lines)
    std::printf("%s\n", detail::escape_text(line).c_str());
  if (Status s = detail::write_calibration(json_path, folded->figures); !s)
    return fail("calibrate", s.to_string());
  std::printf("wrote %s\n", detail::escape_text(json_path).c_str());
  return kExitOk;
}

}  // namespace

int run_calibrate(const Args& args) {
  po::options_description desc("flags");
  desc.add_options()("help,h", "this text")("json", po::value<std::string>(),
                                            "write the calibration file here")(
      "model", po::value<std::string>(), "checkpoint whose files are read")(
      "device", po::value<std::string>(), "cpu | cuda")("quick", po::bool_switch(),
                                                        "smaller, faster measurements")(
      "from-trace", po::value<std::string>(), "fold a dmem run --trace file")(
      "calibration", po::value<std::string>(), "calibration to start from");
  po::variables_map vm;
  bool help_shown = false;
  if (Status s = parse_command(args, desc, nullptr, kHelp, vm, help_shown); !s)
    return fail("calibrate", s.to_string());
  if (help_shown) return kExitOk;
  std::string json_path;
  if (vm.count("json")) {
    json_path = vm["json"].as<std::string>();
    // Refused before a minute of measuring, not after.
    if (Status s = detail::check_write_target(json_path); !s)
      return fail("calibrate", s.to_string());
  }
  if (vm.count("from-trace")) return fold(vm, json_path);
  return measure(vm, json_path);
}

}  // namespace dmem::cli
