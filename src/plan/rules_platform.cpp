// Rules about the machine: GPUs present, device indices, a writable disk tier.
#include "plan/rules.hpp"

namespace dmem::detail {

void check_device_none(const RuleContext& ctx, std::vector<Violation>& out) {
  if (ctx.platform.has_gpu) return;
  for (const auto& v : ctx.views) {
    if ((compute_devices(v.strategy->placement) & kDeviceCuda) == 0) continue;
    out.push_back({"device.none", v.strategy->component,
                   "placement " + placement_kind_name(v.strategy->placement.kind) +
                       " computes on a GPU, but this machine has none",
                   "use placement cpu, or describe the GPU (--gpu PRESET or --vram SIZE)"});
  }
}

void check_device_index(const RuleContext& ctx, std::vector<Violation>& out) {
  if (!ctx.platform.has_gpu) return;  // device.none already says it
  const auto n = ctx.hardware.gpus.size();
  for (const auto& v : ctx.views) {
    const Placement& p = v.strategy->placement;
    if ((compute_devices(p) & kDeviceCuda) == 0) continue;
    if (p.gpu >= 0 && static_cast<std::size_t>(p.gpu) < n) continue;
    out.push_back({"device.index", v.strategy->component,
                   "placement names gpu " + std::to_string(p.gpu) + " but the machine has " +
                       std::to_string(n) + " GPU" + (n == 1 ? "" : "s"),
                   "use gpu 0" + (n > 1 ? " to " + std::to_string(n - 1) : std::string())});
  }
}

void check_disk_writable(const RuleContext& ctx, std::vector<Violation>& out) {
  for (const auto& v : ctx.views) {
    if ((rest_tiers(v.strategy->placement) & kTierDisk) == 0) continue;
    // Unchanged weights stream from the checkpoint itself. A catalog model has no file: the
    // user's own checkpoint is assumed to be that file.
    if (v.strategy->storage.kind == StorageKind::native) continue;
    if (!ctx.platform.cache_writable)
      out.push_back({"disk.writable", v.strategy->component,
                     "the disk tier must write transformed weights, but the cache directory '" +
                         ctx.hardware.cache_dir + "' is not writable",
                     "set --cache-dir (or DMEM_CACHE_DIR) to a writable folder, or keep storage "
                     "native so the checkpoint file itself is the disk tier"});
    else if (ctx.hardware.disk_free == 0)
      out.push_back(
          {"disk.writable", v.strategy->component,
           "the disk tier must write transformed weights, but there is no free space at '" +
               ctx.hardware.cache_dir + "'",
           "free space there or point --cache-dir at a disk with room"});
  }
}

}  // namespace dmem::detail
