// The public validate(): the rules table over the plugins' capabilities (PlanOptions::plugins)
// or the built-in ones, budgets from estimate(). Kept apart from validate.cpp so rule tests can
// link without the estimator.
#include "plan/quantizer_table.hpp"
#include "plan/rules.hpp"
#include "plan/workload_limits.hpp"

namespace dmem {
inline namespace v1 {

Result<std::vector<Violation>> validate(const Model& model, const Strategy& strategy,
                                        const Hardware& hardware, const Workload& workload,
                                        const PlanOptions& options) noexcept {
  if (Status ws = detail::check_workload(model, workload); !ws.is_ok()) return ws;
  const detail::PluginQuantizers from_plugins(options.plugins);
  return detail::validate_with(model, strategy, hardware, workload, options, quantizer_table(),
                               &estimate);
}

}  // namespace v1
}  // namespace dmem
