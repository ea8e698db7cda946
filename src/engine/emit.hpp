// Internal: emitters. A plan becomes what its engine runs: a Python script for diffusers, the
// strategy JSON for dmem (docs/engines.md).
#pragma once

#include <string>
#include <string_view>

#include "dmem/plan.hpp"

namespace dmem::detail {

/// The plan with this id of `report` (planned for report.options.engine) in the engine's form.
/// `command` is the command line that made it, quoted in the output's header.
[[nodiscard]] Result<std::string> emit_plan(const Model& model, const PlanReport& report,
                                            std::string_view plan_id, std::string_view command);

/// A complete, commented diffusers script that loads the pipeline with `plan` and generates one
/// image.
[[nodiscard]] Result<std::string> emit_diffusers(const Model& model, const PlanReport& report,
                                                 const Plan& plan, std::string_view command);

}  // namespace dmem::detail
