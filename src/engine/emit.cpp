// emit_plan: finds the plan and hands it to its engine's emitter.
#include "engine/emit.hpp"

namespace dmem::detail {

Result<std::string> emit_plan(const Model& model, const PlanReport& report,
                              std::string_view plan_id, std::string_view command) {
  const Engine engine = report.options.engine;
  const Plan* plan = nullptr;
  for (const auto& p : report.plans)
    if (p.id == plan_id) plan = &p;
  if (plan == nullptr) {
    std::string hint = report.plans.empty()
                           ? "no plan fits this machine for " + std::string(engine_name(engine)) +
                                 ": see dmem plan without --emit for the rejected ones"
                           : "write --emit N with N from 1 to " +
                                 std::to_string(report.plans.size()) + " (the # column)";
    return Status(Errc::invalid_argument, "--emit: no plan '" + std::string(plan_id) + "' for " +
                                              std::string(engine_name(engine)))
        .with_rule("cli.flag")
        .with_hint(std::move(hint));
  }
  switch (engine) {
    case Engine::dmem:
      return strategy_to_json(plan->strategy) + "\n";
    case Engine::diffusers:
      return emit_diffusers(model, report, *plan, command);
    case Engine::comfyui:
    case Engine::sdcpp:
      break;
  }
  return Status(Errc::unsupported,
                "no emitter for " + std::string(engine_name(engine)) + " yet (issue 10)")
      .with_rule("engine.unknown");
}

}  // namespace dmem::detail
