// Rules about the shape of a strategy: exclusive offload kinds, streams, block ranges, names.
#include <set>

#include "plan/rules.hpp"

namespace dmem::detail {

namespace {

bool is_hook_offload(PlacementKind k) {
  return k == PlacementKind::model_offload || k == PlacementKind::group_offload ||
         k == PlacementKind::sequential;
}

}  // namespace

// diffusers: enable_model_cpu_offload() and enable_sequential_cpu_offload() raise ValueError when
// any component has group offloading, and model and sequential offload replace each other's
// hooks; so at most one of the three kinds may appear across a pipeline.
void check_placement_exclusive(const RuleContext& ctx, std::vector<Violation>& out) {
  std::set<PlacementKind> kinds;
  std::string parties;
  for (const auto& v : ctx.views) {
    const auto k = v.strategy->placement.kind;
    if (!is_hook_offload(k)) continue;
    kinds.insert(k);
    parties +=
        (parties.empty() ? "" : ", ") + v.strategy->component + " (" + placement_kind_name(k) + ")";
  }
  if (kinds.size() < 2) return;
  out.push_back({"placement.exclusive", "",
                 "model offload, group offload and sequential offload are mutually exclusive on a "
                 "pipeline, but this strategy mixes them: " +
                     parties,
                 "use one kind for every offloaded component (e.g. group offload for all of them, "
                 "with the small ones resident), or use partial residency / disk streaming, which "
                 "dmem's residency engine combines with any of them"});
}

void check_offload_streams(const RuleContext& ctx, std::vector<Violation>& out) {
  for (const auto& v : ctx.views) {
    const Placement& p = v.strategy->placement;
    if (p.kind == PlacementKind::group_offload && p.level == OffloadLevel::block && p.use_stream &&
        p.blocks_per_group != 1)
      out.push_back({"offload.streams", v.strategy->component,
                     "streamed block-level group offload moves one block per group, but "
                     "blocks_per_group is " +
                         std::to_string(p.blocks_per_group),
                     "set blocks_per_group to 1 (prefetch depth gives the overlap), or turn "
                     "use_stream off"});
    if (p.record_stream && !p.use_stream)
      out.push_back({"offload.streams", v.strategy->component,
                     "record_stream marks tensors for a copy stream, but use_stream is off",
                     "set use_stream to true, or record_stream to false"});
  }
}

void check_partial_range(const RuleContext& ctx, std::vector<Violation>& out) {
  for (const auto& v : ctx.views) {
    const Placement& p = v.strategy->placement;
    if (p.kind != PlacementKind::partial || v.component == nullptr || v.blocks == 0) continue;
    if (p.resident_blocks == 0 || p.resident_blocks >= v.blocks)
      out.push_back({"partial.range", v.strategy->component,
                     "partial residency keeps the first k blocks resident and streams the rest, so "
                     "0 < k < " +
                         std::to_string(v.blocks) + ", but k is " +
                         std::to_string(p.resident_blocks),
                     p.resident_blocks == 0
                         ? std::string("use group offload with one block per group instead (k = 0)")
                         : std::string("use placement resident instead (k = all blocks), or lower "
                                       "resident_blocks below ") +
                               std::to_string(v.blocks)});
  }
}

void check_offload_blocks(const RuleContext& ctx, std::vector<Violation>& out) {
  for (const auto& v : ctx.views) {
    const Placement& p = v.strategy->placement;
    if (v.component == nullptr || v.blocks > 0) continue;
    const bool needs_blocks =
        p.kind == PlacementKind::partial ||
        (p.kind == PlacementKind::group_offload && p.level == OffloadLevel::block);
    if (needs_blocks)
      out.push_back({"offload.blocks", v.strategy->component,
                     placement_kind_name(p.kind) + " works on repeated blocks, but " +
                         v.strategy->component + " has none",
                     "use leaf-level group offload or model offload for this component"});
  }
}

void check_component_unknown(const RuleContext& ctx, std::vector<Violation>& out) {
  std::string names;
  for (const auto& c : ctx.model.components) names += (names.empty() ? "" : ", ") + c.name;
  for (const auto& v : ctx.views)
    if (v.component == nullptr)
      out.push_back({"component.unknown", v.strategy->component,
                     "the strategy places '" + v.strategy->component + "' but " + ctx.model.name +
                         " has no such component",
                     "use one of: " + names});
}

}  // namespace dmem::detail
