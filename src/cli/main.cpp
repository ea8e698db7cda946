// dmem: plan how a diffusion model fits a machine, from checkpoint headers or the built-in catalog.
#include <cstdio>
#include <exception>
#include <string>
#include <string_view>

#include "cli/commands.hpp"

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

<model> is a catalog name (dmem models), a .safetensors file, a *.safetensors.index.json,
a diffusers folder, a single-file checkpoint or a .gguf file.
Run `dmem <command> --help` for a command's flags.)";

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "%s\n", kUsage);
    return 2;
  }
  const std::string_view command = argv[1];
  dmem::cli::Args args(argv + 2, argv + argc);
  try {
    if (command == "models") return dmem::cli::run_models(args);
    if (command == "inspect") return dmem::cli::run_inspect(args);
    if (command == "plan") return dmem::cli::run_plan(args);
    if (command == "validate") return dmem::cli::run_validate(args);
    if (command == "hardware") return dmem::cli::run_hardware(args);
    if (command == "help" || command == "--help" || command == "-h") {
      std::printf("%s\n", kUsage);
      return 0;
    }
    if (command == "--version" || command == "version") {
      std::printf("dmem %s\n", DMEM_VERSION);
      return 0;
    }
  } catch (const std::exception& e) {
    // Flag parsing (Boost.Program_options) reports bad flags by throwing; say it in one line.
    std::fprintf(stderr, "dmem %s: %s\n", std::string(command).c_str(), e.what());
    return 2;
  }
  std::fprintf(stderr, "dmem: unknown command '%s'\n%s\n", std::string(command).c_str(), kUsage);
  return 2;
}
