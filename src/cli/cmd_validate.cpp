// `dmem validate`: checks a hand-written strategy against the rules table and the budgets.
#include <cstdio>
#include <string>

#include "cli/commands.hpp"
#include "cli/machine_flags.hpp"
#include "dmem/model.hpp"
#include "dmem/plan.hpp"
#include "dmem/strategy.hpp"
#include "format/file_io.hpp"

namespace dmem::cli {

namespace {

constexpr const char* kHelp =
    R"(usage: dmem validate <strategy.json> --model <model> [flags] [--json]

Checks a strategy (docs/strategy.md) against every composition rule and budget (docs/rules.md)
before anything loads, and prints each violation with its rule id, the component and a fix.
Exit status: 0 valid, 1 violations, 2 bad input (one line naming the file, key or flag).)";

constexpr std::uint64_t kMaxStrategyBytes = 4u << 20;

int fail(const std::string& what) {
  std::fprintf(stderr, "dmem validate: %s\n", what.c_str());
  return 2;
}

}  // namespace

int run_validate(const Args& args) {
  po::options_description desc("flags");
  desc.add_options()("help,h", "this text")("model", po::value<std::string>(),
                                            "model to validate against")(
      "json", po::bool_switch(), "JSON output")("strategy", po::value<std::string>(),
                                                "strategy JSON file");
  add_machine_options(desc);
  po::variables_map vm;
  if (!parse_command(args, desc, "strategy", kHelp, vm)) return 0;
  if (!vm.count("strategy"))
    return fail("no strategy file given (dmem validate <strategy.json> --model M)");
  if (!vm.count("model")) return fail("--model is required (a catalog name or a checkpoint path)");
  const std::string path = vm["strategy"].as<std::string>();

  // Checked before reading: a FIFO cannot hang, /dev/zero cannot fill memory, a folder is named.
  auto text = detail::read_small_file(path, kMaxStrategyBytes);
  if (!text) return fail(text.status().to_string());
  auto strategy = strategy_from_json(*text);
  if (!strategy) {
    Status s = strategy.status();
    return fail(std::move(s).with_file(path).to_string());
  }
  auto model = open_model(vm["model"].as<std::string>());
  if (!model) return fail(model.status().to_string());
  auto machine = read_machine_options(vm, default_workload(*model));
  if (!machine) return fail(machine.status().to_string());

  auto violations =
      validate(*model, *strategy, machine->hardware, machine->workload, machine->options);
  if (!violations) return fail(violations.status().to_string());

  if (vm["json"].as<bool>()) {
    nlohmann::json j;
    j["valid"] = violations->empty();
    j["model"] = model->name;
    j["hardware"] = hardware_json(machine->hardware);
    j["strategy"] = nlohmann::json::parse(strategy_to_json(*strategy, -1), nullptr, false);
    j["violations"] = nlohmann::json::array();
    for (const auto& v : *violations)
      j["violations"].push_back(
          {{"rule", v.rule}, {"component", v.component}, {"message", v.message}, {"fix", v.fix}});
    std::printf("%s\n", j.dump(2).c_str());
    return violations->empty() ? 0 : 1;
  }

  std::printf("%s on %s · %s\n", path.c_str(), model->name.c_str(),
              hardware_line(machine->hardware).c_str());
  std::printf("  %s\n", strategy_summary(*strategy).c_str());
  if (violations->empty()) {
    std::printf("valid: no rule or budget is broken\n");
    return 0;
  }
  std::printf("%zu violation%s:\n", violations->size(), violations->size() == 1 ? "" : "s");
  for (const auto& v : *violations) {
    std::printf("  %-26s %-14s %s\n", v.rule.c_str(),
                v.component.empty() ? "(pipeline)" : v.component.c_str(), v.message.c_str());
    if (!v.fix.empty()) std::printf("  %-26s %-14s fix: %s\n", "", "", v.fix.c_str());
  }
  return 1;
}

}  // namespace dmem::cli
