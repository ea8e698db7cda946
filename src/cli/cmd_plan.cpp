// `dmem plan`: every way a model can run on this (or a described) machine, ranked, with the
// rejected candidates and the rule or budget each broke.
#include <charconv>
#include <cstdio>
#include <optional>
#include <string>

#include "cli/command_plugins.hpp"
#include "cli/commands.hpp"
#include "cli/machine_flags.hpp"
#include "cli/output.hpp"
#include "cli/plan_render.hpp"
#include "dmem/model.hpp"
#include "dmem/plan.hpp"
#include "dmem/quantizer.hpp"
#include "engine/emit.hpp"
#include "format/file_io.hpp"

namespace dmem::cli {

namespace {

constexpr const char* kHelp =
    R"(usage: dmem plan <model> [flags] [--prefer P] [--json] [--explain ID] [--svg FILE] [--show-rejected]
                 [--engine dmem|diffusers|comfyui|sdcpp] [--emit ID]

Every way the model can run on the machine (probed, or described by --gpu/--vram/--ram ...):
per plan the VRAM peak, RAM at load and steady, load seconds, seconds per step, total and quality
tier, grouped as offloading / casting and quantization; then the rejected candidates with the
rule or budget they broke. Formulas: docs/planner.md.
--engine plans only what that engine can run, with its own memory use; --emit ID prints plan ID
in the engine's form (diffusers: a Python script; comfyui: launch flags, loader nodes and an
API-format workflow; sdcpp: the sd-cli command line; dmem: the strategy JSON). docs/engines.md.
Exit status: 0 plans found (or explained), 1 no viable plan (also with --explain), 2 bad input.)";

int fail(const std::string& what) {
  return cli::fail("plan", what);
}

}  // namespace

int run_plan(const Args& args) {
  po::options_description desc("flags");
  desc.add_options()("help,h", "this text")("model", po::value<std::string>(),
                                            "catalog name or checkpoint path")(
      "json", po::bool_switch(), "JSON output (hardware, workload, plans[], rejected[])")(
      "explain", po::value<std::string>(), "print the arithmetic of plan ID phase by phase")(
      "svg", po::value<std::string>(),
      "write per-phase VRAM and RAM bars of the best plans to FILE")(
      "show-rejected", po::bool_switch(), "list every rejected candidate with all its violations")(
      "top", po::value<std::string>(), "plans shown per group in the table (default 5)")(
      "engine", po::value<std::string>(),
      "dmem (default), diffusers, comfyui or sdcpp: plan for that engine")(
      "emit", po::value<std::string>(), "print plan ID in the engine's form");
  add_machine_options(desc);
  po::variables_map vm;
  bool help_shown = false;
  if (Status s = parse_command(args, desc, "model", kHelp, vm, help_shown); !s)
    return fail(s.to_string());
  if (help_shown) return kExitOk;
  if (!vm.count("model"))
    return fail(Status(Errc::invalid_argument, "no model given")
                    .with_rule("cli.flag")
                    .with_hint("dmem plan <model> [flags]; dmem models lists the catalog")
                    .to_string());
  RenderOptions ro;
  ro.show_rejected = vm["show-rejected"].as<bool>();
  if (vm.count("top")) {
    const std::string t = vm["top"].as<std::string>();
    std::size_t v = 0;
    auto [p, ec] = std::from_chars(t.data(), t.data() + t.size(), v);
    if (ec != std::errc() || p != t.data() + t.size() || v == 0)
      return fail(
          Status(Errc::invalid_argument, "--top: '" + t + "' is not a whole number of at least 1")
              .with_rule("cli.flag")
              .with_hint("write --top N, e.g. --top 3")
              .to_string());
    ro.top = v;
  }
  auto model = open_model(vm["model"].as<std::string>());
  if (!model) return fail(model.status().to_string());
  auto machine = read_machine_options(vm, default_workload(*model));
  if (!machine) return fail(machine.status().to_string());
  const CommandPlugins plugins;  // the quantizers offered are the plugins' (`dmem plugins`)
  machine->options.plugins = plugins.for_planner();
  std::optional<detail::QuantizerScope> engine_table;
  if (vm.count("engine")) {
    const Status applied =
        apply_engine(vm["engine"].as<std::string>(), machine->options, engine_table);
    if (!applied) return fail(applied.to_string());
  }
  auto report = make_plans(*model, machine->hardware, machine->workload, machine->options);
  if (!report) return fail(report.status().to_string());
  if (vm.count("emit")) {
    std::string command = "dmem plan";
    for (const auto& a : args) command += " " + a;
    auto text = detail::emit_plan(*model, *report, vm["emit"].as<std::string>(), command);
    if (!text) return fail(text.status().to_string());
    print_text(*text);
    return kExitOk;
  }

  if (vm.count("svg")) {
    const std::string path = vm["svg"].as<std::string>();
    // The one safe-write path: O_EXCL temp file, fsync, rename; devices and FIFOs refused.
    if (Status s = detail::write_file_atomic(path, render_svg(*model, *report, 6)); !s.is_ok())
      return fail(s.to_string());
  }
  if (vm["json"].as<bool>()) {
    print_json(plan_json(*model, *report));
    return report->plans.empty() ? kExitNegative : kExitOk;
  }
  // No viable plan is an answer about the machine, not bad input: the same status with or
  // without --explain.
  if (report->plans.empty()) {
    print_text(render_no_plan(*model, *report));
    return kExitNegative;
  }
  if (vm.count("explain")) {
    const std::string id = vm["explain"].as<std::string>();
    const std::string text = render_explain(*model, *report, id);
    if (text.empty())
      return fail(Status(Errc::invalid_argument, "--explain: no plan '" + id + "'")
                      .with_rule("cli.flag")
                      .with_hint("write --explain N with N from 1 to " +
                                 std::to_string(report->plans.size()) + " (the # column)")
                      .to_string());
    print_text(text);
    return kExitOk;
  }
  print_text(render_plan_table(*model, *report, ro));
  return kExitOk;
}

}  // namespace dmem::cli
