// The rules table and the helpers that describe placements and capability masks.
#include "plan/rules.hpp"

namespace dmem::detail {

void check_component_unknown(const RuleContext&, std::vector<Violation>&);
void check_placement_exclusive(const RuleContext&, std::vector<Violation>&);
void check_offload_streams(const RuleContext&, std::vector<Violation>&);
void check_offload_blocks(const RuleContext&, std::vector<Violation>&);
void check_partial_range(const RuleContext&, std::vector<Violation>&);
void check_quantizer_unknown(const RuleContext&, std::vector<Violation>&);
void check_single_transform(const RuleContext&, std::vector<Violation>&);
void check_exec_device(const RuleContext&, std::vector<Violation>&);
void check_storage_tier(const RuleContext&, std::vector<Violation>&);
void check_device_none(const RuleContext&, std::vector<Violation>&);
void check_device_index(const RuleContext&, std::vector<Violation>&);
void check_device_features(const RuleContext&, std::vector<Violation>&);
void check_disk_writable(const RuleContext&, std::vector<Violation>&);
void check_budgets(const RuleContext&, std::vector<Violation>&);
void check_engine_express(const RuleContext&, std::vector<Violation>&);
void check_engine_disk_copy(const RuleContext&, std::vector<Violation>&);

const std::vector<Rule>& rules_table() noexcept {
  static const std::vector<Rule> table = {
      {"component.unknown", "every strategy component exists in the model",
       check_component_unknown},
      {"placement.exclusive",
       "model, group and sequential offload are mutually exclusive on a pipeline",
       check_placement_exclusive},
      {"offload.streams",
       "streamed block-level group offload uses one block per group; record_stream needs "
       "use_stream",
       check_offload_streams},
      {"offload.blocks", "block-level offload and partial residency need repeated blocks",
       check_offload_blocks},
      {"partial.range", "partial residency keeps 0 < k < blocks resident", check_partial_range},
      {"quantizer.unknown", "the storage transform is one the planner knows",
       check_quantizer_unknown},
      {"storage.single_transform",
       "layerwise casting and quantization never both apply to a tensor", check_single_transform},
      {"quantizer.exec_device",
       "compute devices of the placement are execution devices of the quantizer",
       check_exec_device},
      {"quantizer.storage_tier", "offloaded packed data rests only in tiers the quantizer allows",
       check_storage_tier},
      {"device.none", "GPU placements need a GPU", check_device_none},
      {"device.index", "placements name GPUs the machine has", check_device_index},
      {"device.features", "the device has the SM and the kernels' architectures the storage needs",
       check_device_features},
      {"disk.writable", "a disk tier of transformed weights needs a writable cache dir with room",
       check_disk_writable},
      {"engine.express", "the engine chosen can express the strategy", check_engine_express},
      {"engine.disk_copy", "diffusers' disk offload writes a copy: it needs a writable cache dir",
       check_engine_disk_copy},
      {"budget",
       "every phase fits VRAM, RAM at load and steady, pinned RAM and disk (with the margin)",
       check_budgets},
  };
  return table;
}

std::string placement_kind_name(PlacementKind kind) {
  switch (kind) {
    case PlacementKind::resident:
      return "resident";
    case PlacementKind::model_offload:
      return "model_offload";
    case PlacementKind::group_offload:
      return "group_offload";
    case PlacementKind::sequential:
      return "sequential";
    case PlacementKind::partial:
      return "partial";
    case PlacementKind::cpu:
      return "cpu";
    case PlacementKind::disk:
      return "disk";
    case PlacementKind::dropped:
      return "dropped";
  }
  return "?";
}

std::string device_mask_text(std::uint32_t mask) {
  std::string out;
  if (mask & kDeviceCpu) out += "cpu";
  if (mask & kDeviceCuda) out += std::string(out.empty() ? "" : " and ") + "cuda";
  return out.empty() ? "nothing" : out;
}

std::string tier_mask_text(std::uint32_t mask) {
  std::string out;
  const std::pair<std::uint32_t, const char*> names[] = {{kTierVram, "vram"},
                                                         {kTierPinned, "pinned RAM"},
                                                         {kTierPageable, "pageable RAM"},
                                                         {kTierDisk, "disk"}};
  for (const auto& [bit, name] : names)
    if (mask & bit) out += (out.empty() ? "" : ", ") + std::string(name);
  return out.empty() ? "nowhere" : out;
}

std::uint32_t compute_devices(const Placement& p) noexcept {
  return p.kind == PlacementKind::cpu ? kDeviceCpu : kDeviceCuda;
}

std::uint32_t rest_tiers(const Placement& p) noexcept {
  const std::uint32_t park = p.park == Tier::pinned     ? kTierPinned
                             : p.park == Tier::pageable ? kTierPageable
                                                        : kTierDisk;
  switch (p.kind) {
    case PlacementKind::resident:
    case PlacementKind::dropped:
      return kTierVram;
    case PlacementKind::model_offload:
    case PlacementKind::group_offload:
    case PlacementKind::sequential:
    case PlacementKind::partial:
      return kTierVram | park;
    case PlacementKind::cpu:
      return kTierPageable;
    case PlacementKind::disk:
      return kTierVram | kTierDisk;
  }
  return kTierVram;
}

}  // namespace dmem::detail
