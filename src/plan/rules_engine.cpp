// Engine rules: what the engine chosen in PlanOptions cannot run, as violations of the same
// rules table (docs/rules.md, docs/engines.md). Nothing here fires for the dmem engine.
#include "engine/engine_profile.hpp"
#include "plan/rules.hpp"

namespace dmem::detail {

// The strategy is one the engine can express at all (a diffusers script has no partial
// residency, reads GGUF only for its own models ...).
void check_engine_express(const RuleContext& ctx, std::vector<Violation>& out) {
  if (ctx.options.engine == Engine::dmem) return;
  const Expressed x = express(ctx.options.engine, ctx.model, ctx.strategy);
  if (x.ok) return;
  const std::string engine(engine_name(ctx.options.engine));
  out.push_back({"engine.express", x.component, engine + " cannot express this: " + x.why,
                 "dmem plan --engine " + engine +
                     " lists the strategies it can run; or run this one with dmem"});
}

// diffusers' offload_to_disk_path writes every offloaded group to files of its own, unchanged
// weights included: unlike dmem, it cannot stream from the checkpoint.
void check_engine_disk_copy(const RuleContext& ctx, std::vector<Violation>& out) {
  if (ctx.options.engine != Engine::diffusers || ctx.platform.cache_writable) return;
  for (const auto& v : ctx.views) {
    const Placement& p = v.strategy->placement;
    const bool to_disk = p.kind == PlacementKind::disk ||
                         (p.kind == PlacementKind::group_offload && p.park == Tier::disk);
    if (!to_disk) continue;
    out.push_back({"engine.disk_copy", v.strategy->component,
                   v.strategy->component +
                       ": diffusers' offload_to_disk_path writes a copy of the weights, and the "
                       "cache dir is not writable",
                   "--cache-dir (or DMEM_CACHE_DIR) to a writable folder with room, or park in "
                   "RAM"});
  }
}

}  // namespace dmem::detail
