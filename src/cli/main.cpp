// dmem: plan how a diffusion model fits a machine, from checkpoint headers or the built-in catalog.
#include <cstdio>
#include <exception>
#include <string>
#include <string_view>

#include "cli/commands.hpp"
#include "cli/output.hpp"
#include "dmem/status.hpp"

namespace {

constexpr const char* kUsage = R"(usage: dmem <command> [options]

commands:
  models                       list the built-in catalog
  inspect <model> [--json] [--tensors]
                               sizes of every component from headers alone
  plan <model> [flags]         every way the model can run on this (or a described) machine
  validate <strategy.json> --model <model> [flags]
                               check a strategy against the composition rules and budgets
  hardware [flags] [--json]    what dmem sees of this machine (or the described one)
  run <model> [--plan N | --strategy s.json] [--scale-down F] [--steps N] [--trace t.json]
                               load by a plan and run a synthetic workload; estimate vs measured
  plugins [--json] [--path DIR]...
                               the plugins dmem finds, their capabilities, and every
                               candidate file skipped with why
  report <trace.json> [--json] peaks per store, load rate, bytes moved, stalls and overlap per
                               step from a trace (dmem run --trace)
  calibrate [--json out.json] [--model PATH] [--device cpu|cuda] [--quick]
                               measure bandwidth and GEMM throughput into a calibration file
                               for plan --calibration; --from-trace t.json folds a run back in

<model> is a catalog name (dmem models), a .safetensors file, a *.safetensors.index.json,
a diffusers folder, a single-file checkpoint or a .gguf file.
Run `dmem <command> --help` for a command's flags.

exit status:
  0  success
  1  a negative answer: validate found violations, plan found no viable plan (also with --explain)
  2  bad input: one line on stderr names the file, offset, tensor, key or flag and the rule broken
  3  internal error (a dmem bug; please report it with the line printed))";

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "%s\n", kUsage);
    return dmem::cli::kExitBadInput;
  }
  const std::string_view command = argv[1];
  dmem::cli::Args args(argv + 2, argv + argc);
  try {
    if (command == "models") return dmem::cli::run_models(args);
    if (command == "inspect") return dmem::cli::run_inspect(args);
    if (command == "plan") return dmem::cli::run_plan(args);
    if (command == "validate") return dmem::cli::run_validate(args);
    if (command == "hardware") return dmem::cli::run_hardware(args);
    if (command == "run") return dmem::cli::run_run(args);
    if (command == "plugins") return dmem::cli::run_plugins(args);
    if (command == "report") return dmem::cli::run_report(args);
    if (command == "convert") return dmem::cli::run_convert(args);
    if (command == "calibrate") return dmem::cli::run_calibrate(args);
    if (command == "help" || command == "--help" || command == "-h") {
      std::printf("%s\n", kUsage);
      return 0;
    }
    if (command == "--version" || command == "version") {
      std::printf("dmem %s\n", DMEM_VERSION);
      return 0;
    }
  } catch (const std::exception& e) {
    // Bad flags are Statuses (parse_command); anything thrown is ours (or out of memory).
    return dmem::cli::fail(command,
                           std::string("internal error: ") + e.what() +
                               " [rule cli.internal] (hint: please report this line)",
                           dmem::cli::kExitInternal);
  }
  dmem::cli::fail("", dmem::Status(dmem::Errc::invalid_argument,
                                   "unknown command '" + std::string(command) + "'")
                          .with_rule("cli.command")
                          .with_hint("one of models, inspect, plan, validate, hardware, plugins, "
                                     "run, report, calibrate, help")
                          .to_string());
  std::fprintf(stderr, "%s\n", kUsage);
  return dmem::cli::kExitBadInput;
}
