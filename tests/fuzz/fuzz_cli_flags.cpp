// libFuzzer target: the machine and workload flags of `dmem plan/validate/hardware`. The input is
// the argument list, NUL-separated. Boost.Program_options errors must come back as a Status with
// rule cli.flag (an escaping exception would end the run); the machine is never probed.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "cli/machine_flags.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::vector<std::string> args(1);
  for (std::size_t i = 0; i < size; ++i) {
    if (data[i] == 0)
      args.emplace_back();
    else
      args.back().push_back(static_cast<char>(data[i]));
  }
  namespace po = dmem::cli::po;
  po::options_description desc("flags");
  // No --help here: it would print the flags (abbreviations such as --he included) on every hit.
  desc.add_options()("model", po::value<std::string>(), "model");
  dmem::cli::add_machine_options(desc);
  po::variables_map vm;
  bool help = false;
  const dmem::Status parsed = dmem::cli::parse_command(args, desc, "model", "", vm, help);
  if (!parsed) {
    if (parsed.rule() != "cli.flag") __builtin_trap();
    (void)parsed.to_string();
    return 0;
  }
  auto options = dmem::cli::read_hardware_options(vm);
  if (!options) {
    (void)options.status().to_string();
    return 0;
  }
  options->probe = false;        // no /proc, /sys or GPU queries
  options->calibration.reset();  // no files named by the input
  auto hw = dmem::make_hardware(*options);
  if (!hw) (void)hw.status().to_string();
  // The workload flags too, where that cannot probe this machine or read a file.
  if (vm["no-probe"].as<bool>() && vm.count("calibration") == 0) {
    auto machine = dmem::cli::read_machine_options(vm);
    if (!machine) (void)machine.status().to_string();
  }
  return 0;
}
