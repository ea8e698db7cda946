// `dmem validate`: checks a hand-written strategy against the rules table and the budgets.
#include <cstdio>
#include <optional>
#include <string>

#include "cli/command_plugins.hpp"
#include "cli/commands.hpp"
#include "cli/machine_flags.hpp"
#include "cli/output.hpp"
#include "cli/plan_render.hpp"
#include "core/text_escape.hpp"
#include "dmem/model.hpp"
#include "dmem/plan.hpp"
#include "dmem/quantizer.hpp"
#include "dmem/strategy.hpp"
#include "engine/engine_profile.hpp"
#include "format/file_io.hpp"
#include "plan/strategy_limits.hpp"
#include "plan/workload_limits.hpp"

namespace dmem::cli {

namespace {

constexpr const char* kHelp =
    R"(usage: dmem validate <strategy.json> --model <model> [flags] [--engine E] [--json]

Checks a strategy (docs/strategy.md) against every composition rule and budget (docs/rules.md)
before anything loads, and prints each violation with its rule id, the component and a fix;
then the estimate (per phase: VRAM peak, weights, activations, RAM, pinned, seconds; load time,
seconds per step, total), as `dmem plan --explain` costs it (docs/planner.md).
--engine diffusers|comfyui|sdcpp: whether that engine can express the strategy (rule
engine.express says why not), and the estimate as that engine runs it (docs/engines.md).
Exit status: 0 valid, 1 violations, 2 bad input (one line naming the file, key or flag).)";

int fail(const std::string& what) {
  return cli::fail("validate", what);
}

}  // namespace

int run_validate(const Args& args) {
  po::options_description desc("flags");
  desc.add_options()("help,h", "this text")("model", po::value<std::string>(),
                                            "model to validate against")(
      "json", po::bool_switch(), "JSON output")("strategy", po::value<std::string>(),
                                                "strategy JSON file")(
      "engine", po::value<std::string>(), "dmem (default), diffusers, comfyui or sdcpp");
  add_machine_options(desc);
  po::variables_map vm;
  bool help_shown = false;
  if (Status s = parse_command(args, desc, "strategy", kHelp, vm, help_shown); !s)
    return fail(s.to_string());
  if (help_shown) return kExitOk;
  if (!vm.count("strategy"))
    return fail(Status(Errc::invalid_argument, "no strategy file given")
                    .with_rule("cli.flag")
                    .with_hint("dmem validate <strategy.json> --model M [flags]")
                    .to_string());
  if (!vm.count("model"))
    return fail(Status(Errc::invalid_argument, "--model is required")
                    .with_rule("cli.flag")
                    .with_hint("--model NAME_OR_PATH: a catalog name or a checkpoint path")
                    .to_string());
  const std::string path = vm["strategy"].as<std::string>();
  // The plugins' quantizers are the ones a strategy may name and the rules check.
  const CommandPlugins plugins;

  // Checked before reading: a FIFO cannot hang, /dev/zero cannot fill memory, a folder is named.
  auto text = detail::read_small_file(path, detail::kMaxStrategyBytes);
  if (!text) {
    Status s = text.status();
    if (s.code() == Errc::limit_exceeded)
      s.with_rule("strategy.limit.size")
          .with_hint("a strategy lists a few components; check that this is the right file");
    return fail(s.to_string());
  }
  auto strategy = strategy_from_json(*text);
  if (!strategy) {
    Status s = strategy.status();
    return fail(std::move(s).with_file(path).to_string());
  }
  auto model = open_model(vm["model"].as<std::string>());
  if (!model) return fail(model.status().to_string());
  auto machine = read_machine_options(vm, default_workload(*model));
  if (!machine) return fail(machine.status().to_string());

  machine->options.plugins = plugins.for_planner();
  std::optional<detail::QuantizerScope> engine_table;
  if (vm.count("engine")) {
    const Status applied =
        apply_engine(vm["engine"].as<std::string>(), machine->options, engine_table);
    if (!applied) return fail(applied.to_string());
  }
  const Engine engine = machine->options.engine;
  // The strategy as the engine runs it (engines rewrite some placements), or why it cannot.
  const detail::Expressed expressed =
      engine == Engine::dmem ? detail::Expressed{} : detail::express(engine, *model, *strategy);
  auto violations =
      validate(*model, *strategy, machine->hardware, machine->workload, machine->options);
  if (!violations) return fail(violations.status().to_string());
  // What it would cost: printed for a valid strategy and for one that breaks only budgets (the
  // figures say by how much). Components the strategy does not name stay resident, native.
  bool budgets_only = true;
  for (const auto& v : *violations) budgets_only = budgets_only && v.rule.rfind("budget.", 0) == 0;
  Result<Estimate> est = Status(Errc::invalid_argument, "breaks a composition rule");
  if (budgets_only && engine == Engine::dmem) {
    est = estimate(*model, *strategy, machine->hardware, machine->workload);
  } else if (budgets_only && expressed.ok) {
    est = estimate(*model, expressed.strategy, machine->hardware, machine->workload);
    if (est) {
      detail::ModelProfile mp = detail::profile_model(*model, machine->workload);
      detail::adjust_estimate(engine, mp, expressed.strategy, machine->hardware, *est);
    }
  }
  const std::vector<std::string> warnings = detail::workload_warnings(*model, machine->workload);
  const bool gpu = !machine->hardware.gpus.empty();

  if (vm["json"].as<bool>()) {
    nlohmann::json j;
    j["valid"] = violations->empty();
    j["model"] = model->name;
    j["hardware"] = hardware_json(machine->hardware);
    j["strategy"] = nlohmann::json::parse(strategy_to_json(*strategy, -1), nullptr, false);
    j["warnings"] = warnings;
    j["engine"] = std::string(engine_name(engine));
    if (engine != Engine::dmem) {
      j["expressible"] = expressed.ok;
      if (expressed.ok)
        j["as_run"] =
            nlohmann::json::parse(strategy_to_json(expressed.strategy, -1), nullptr, false);
      else
        j["why_not"] = expressed.why;
    }
    if (est) {
      j["estimate"] = estimate_json(*est);
      j["estimate"]["phases"] = estimate_phases_json(*est);
    } else {
      j["estimate"] = nullptr;
    }
    j["violations"] = nlohmann::json::array();
    for (const auto& v : *violations)
      j["violations"].push_back(
          {{"rule", v.rule}, {"component", v.component}, {"message", v.message}, {"fix", v.fix}});
    print_json(j);
    return violations->empty() ? kExitOk : kExitNegative;
  }

  std::string out = detail::escape_text(path) + " on " + detail::escape_text(model->name) + " · " +
                    detail::escape_text(hardware_line(machine->hardware)) + "\n";
  out += "  " + detail::escape_text(strategy_summary(*strategy)) + "\n";
  for (const auto& w : warnings) out += "warning: " + w + "\n";
  if (engine != Engine::dmem) {
    const std::string name(engine_name(engine));
    if (expressed.ok) {
      out += name + " can express it";
      const std::string as_run = strategy_summary(expressed.strategy);
      if (as_run != strategy_summary(*strategy))
        out += "; as " + name + " runs it: " + detail::escape_text(as_run);
      out += "\n";
    } else {
      out += name + " cannot express it: " + detail::escape_text(expressed.why) + "\n";
    }
  }
  std::string table;
  if (est) {
    table = "estimate (" + std::to_string(machine->workload.width) + "x" +
            std::to_string(machine->workload.height);
    if (machine->workload.frames > 1)
      table += "x" + std::to_string(machine->workload.frames) + " frames";
    table += ", " + std::to_string(machine->workload.steps) + " steps):\n";
    table += render_estimate(*est, machine->workload, gpu);
  }
  if (violations->empty()) {
    print_text(out + "valid: no rule or budget is broken\n" + table);
    return kExitOk;
  }
  out += std::to_string(violations->size()) + " violation" +
         (violations->size() == 1 ? ":\n" : "s:\n");
  // Names are escaped one by one, so a newline in one cannot start a line of its own.
  auto cell = [](std::string_view name, std::size_t width) {
    std::string c = detail::escape_text(name);
    if (c.size() < width) c.append(width - c.size(), ' ');
    return c;
  };
  for (const auto& v : *violations) {
    out += "  " + cell(v.rule, 26) + " " +
           cell(v.component.empty() ? "(pipeline)" : v.component, 14) + " " +
           detail::escape_text(v.message) + "\n";
    if (!v.fix.empty())
      out +=
          "  " + cell("", 26) + " " + cell("", 14) + " fix: " + detail::escape_text(v.fix) + "\n";
  }
  print_text(out + table);
  return kExitNegative;
}

}  // namespace dmem::cli
