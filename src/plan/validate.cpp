// validate(): runs the rules table over a strategy, then the budgets over its estimate, and
// reports every violation.
#include <unistd.h>

#include <filesystem>
#include <system_error>

#include "dmem/module_tree.hpp"
#include "engine/engine_profile.hpp"
#include "plan/estimator.hpp"
#include "plan/rules.hpp"
#include "plan/strategy_limits.hpp"

namespace dmem::detail {

namespace {

bool writable_dir(const std::string& dir) {
  if (dir.empty()) return false;
  std::error_code ec;
  std::filesystem::path p(dir);
  // A cache dir that does not exist yet is created on first use: its nearest existing parent
  // must be writable.
  while (!std::filesystem::exists(p, ec)) {
    if (!p.has_parent_path() || p.parent_path() == p) return false;
    p = p.parent_path();
  }
  return std::filesystem::is_directory(p, ec) && ::access(p.c_str(), W_OK) == 0;
}

bool needs_blocks(const Placement& p) {
  return p.kind == PlacementKind::partial || p.kind == PlacementKind::group_offload;
}

}  // namespace

RuleContext make_rule_context(const Model& model, const Strategy& strategy,
                              const Hardware& hardware, const Workload& workload,
                              const PlanOptions& options,
                              const std::vector<QuantizerCaps>& quantizers) {
  RuleContext ctx{model, strategy, hardware, workload, options, quantizers, {}, {}, nullptr};
  ctx.platform.has_gpu = !hardware.gpus.empty();
  bool any_disk = false;
  for (const auto& cs : strategy.components) {
    ComponentView v;
    v.strategy = &cs;
    v.component = model.find(cs.component);
    v.caps = storage_caps(cs.storage, quantizers);
    if (v.component != nullptr && cs.storage.kind != StorageKind::native)
      v.prequantized = first_block_quant(*v.component);
    // Block counts cost a module-tree walk: only for placements that need them.
    if (v.component != nullptr && needs_blocks(cs.placement))
      v.blocks = static_cast<std::uint32_t>(summarize(*v.component).blocks.size());
    any_disk = any_disk || (rest_tiers(cs.placement) & kTierDisk) != 0;
    ctx.views.push_back(v);
  }
  if (any_disk) ctx.platform.cache_writable = writable_dir(hardware.cache_dir);
  return ctx;
}

Result<std::vector<Violation>> validate_with(const Model& model, const Strategy& strategy,
                                             const Hardware& hardware, const Workload& workload,
                                             const PlanOptions& options,
                                             const std::vector<QuantizerCaps>& quantizers,
                                             EstimateFn estimator) noexcept {
  if (!(options.margin >= 0.0 && options.margin < 1.0))
    return Status(Errc::invalid_argument, "margin must be in [0, 1)").with_rule("plan.margin");
  // Strategies built in code skip strategy_from_json's limit; the rules must stay cheap for them
  // too.
  if (strategy.components.size() > kMaxStrategyComponents)
    return Status(Errc::limit_exceeded, "the strategy lists " +
                                            std::to_string(strategy.components.size()) +
                                            " components, more than the limit of " +
                                            std::to_string(kMaxStrategyComponents))
        .with_rule("strategy.limit.components")
        .with_hint("list each of the model's components at most once");
  RuleContext ctx = make_rule_context(model, strategy, hardware, workload, options, quantizers);
  std::vector<Violation> out;
  for (const auto& rule : rules_table()) rule.check(ctx, out);

  // Budgets need an estimate; a strategy the estimator cannot cost (an unknown component, an
  // unknown quantizer) has already been reported above.
  if (estimator == nullptr) return out;
  // An engine is costed on the strategy as it runs it, plus its own memory behaviour
  // (docs/engines.md).
  const Expressed x =
      options.engine == Engine::dmem ? Expressed{} : express(options.engine, model, strategy);
  auto est = estimator(model, x.ok ? x.strategy : strategy, hardware, workload);
  if (!est) {
    if (!out.empty()) return out;
    return est.status();
  }
  if (x.ok) {
    ModelProfile mp = profile_model(model, workload);
    adjust_estimate(options.engine, mp, x.strategy, hardware, *est);
  }
  ctx.estimate = &*est;
  for (const auto& rule : rules_table())
    if (std::string_view(rule.id) == "budget") rule.check(ctx, out);
  return out;
}

}  // namespace dmem::detail
