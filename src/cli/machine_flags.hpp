// Flags shared by `dmem plan`, `dmem validate` and `dmem hardware`: the machine (probed, preset or
// given), the workload and the planning options.
#pragma once

#include <string>
#include <vector>

#include <boost/program_options.hpp>
#include <nlohmann/json.hpp>

#include "dmem/hardware.hpp"
#include "dmem/plan.hpp"
#include "dmem/status.hpp"

namespace dmem::cli {

namespace po = boost::program_options;

/// Everything the machine and workload flags say, resolved: the hardware is probed (unless
/// --no-probe), then the preset, explicit values and calibration are applied.
struct MachineArgs {
  HardwareOptions hardware_options;
  Hardware hardware;
  Workload workload;
  PlanOptions options;
};

/// Parses a sub-command's arguments (`positional`: the name of its one positional option, or
/// nullptr). For --help prints `help` and the flags and sets `help_shown`. A bad flag (unknown,
/// missing its value, given twice, a second positional) is Errc::invalid_argument with rule
/// `cli.flag` and a hint with the valid forms; Boost's exceptions stop here.
[[nodiscard]] Status parse_command(const std::vector<std::string>& args,
                                   const po::options_description& desc, const char* positional,
                                   const char* help, po::variables_map& vm, bool& help_shown);

/// --vram --ram --gpu --gpus --pinned-limit --disk --cache-dir --calibration --no-probe
void add_hardware_options(po::options_description& desc);
/// --width --height --frames --batch --steps --cfg --images --activation-gib --prefer --margin
void add_workload_options(po::options_description& desc);
/// Both of the above.
void add_machine_options(po::options_description& desc);

/// Reads the flags added above (those not added are left at their defaults) and builds the
/// hardware. Errors are Errc::invalid_argument naming the flag, or make_hardware's error.
/// Flags given override `defaults` (the model's default_workload); hardware is probed or built
/// from the hardware flags.
[[nodiscard]] Result<MachineArgs> read_machine_options(const po::variables_map& vm,
                                                       const Workload& defaults = {});

/// Only the hardware part (no probe/make_hardware call): for tests and `dmem hardware`.
[[nodiscard]] Result<HardwareOptions> read_hardware_options(const po::variables_map& vm);

/// The machine as JSON (the `hardware` object of `dmem hardware --json` and `dmem plan --json`).
[[nodiscard]] nlohmann::json hardware_json(const Hardware& hw);
/// One line for report headers: "NVIDIA GeForce RTX 5090 32.00 GiB (sm_120, PCIe 5.0 x16) ·
/// RAM 60.00 GiB".
[[nodiscard]] std::string hardware_line(const Hardware& hw);
/// Pinned bytes dmem may lock: --pinned-limit, else half the available RAM.
[[nodiscard]] std::uint64_t effective_pinned_limit(const Hardware& hw);

/// "quality" | "speed" | "memory" | "balanced".
[[nodiscard]] std::string preference_name(Preference p);

}  // namespace dmem::cli
