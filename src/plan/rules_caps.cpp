// Rules that compare a component's placement with its storage transform's capabilities.
#include <string_view>
#include <unordered_set>

#include "plan/rules.hpp"

namespace dmem::detail {

namespace {

// Fixes suggest alternatives from the capability table, never by name in the rule.
template <class Pred>
std::string alternatives(const RuleContext& ctx, Pred ok) {
  std::string out;
  int n = 0;
  for (const auto& q : ctx.quantizers) {
    if (!ok(q) || out.find(q.display) != std::string::npos) continue;
    if (n++ == 4) break;
    out += (out.empty() ? "" : ", ") + q.display;
  }
  return out.empty() ? "native storage" : "native storage or " + out;
}

}  // namespace

void check_quantizer_unknown(const RuleContext& ctx, std::vector<Violation>& out) {
  for (const auto& v : ctx.views) {
    const Storage& s = v.strategy->storage;
    if (s.kind == StorageKind::native || v.caps != nullptr) continue;
    std::string known;
    for (const auto& q : ctx.quantizers)
      if (known.find(q.id) == std::string::npos) known += (known.empty() ? "" : ", ") + q.id;
    out.push_back(
        {"quantizer.unknown", v.strategy->component,
         s.kind == StorageKind::layerwise_cast
             ? "no layerwise cast to " + std::string(dtype_name(s.cast_dtype)) + " is available"
             : "no quantizer '" + s.quantizer + "' with these parameters is available",
         "use one of: " + known + " (or load the plugin that provides it)"});
  }
}

void check_exec_device(const RuleContext& ctx, std::vector<Violation>& out) {
  for (const auto& v : ctx.views) {
    if (v.caps == nullptr) continue;
    const std::uint32_t need = compute_devices(v.strategy->placement);
    const std::uint32_t missing = need & ~v.caps->exec_devices;
    if (missing == 0) continue;
    out.push_back({"quantizer.exec_device", v.strategy->component,
                   v.caps->display + " executes only on " + device_mask_text(v.caps->exec_devices) +
                       ", but placement " + placement_kind_name(v.strategy->placement.kind) +
                       " computes on " + device_mask_text(missing),
                   "compute on " + device_mask_text(v.caps->exec_devices) +
                       " (a GPU placement), or pick a storage that executes on " +
                       device_mask_text(missing) + ": " +
                       alternatives(ctx, [&](const QuantizerCaps& q) {
                         return (q.exec_devices & need) == need;
                       })});
  }
}

void check_storage_tier(const RuleContext& ctx, std::vector<Violation>& out) {
  for (const auto& v : ctx.views) {
    // A transform whose offloader moves dequantized data never parks packed data off-device.
    if (v.caps == nullptr || !v.caps->moves_packed) continue;
    const std::uint32_t rests = rest_tiers(v.strategy->placement);
    const std::uint32_t missing = rests & ~v.caps->storage_tiers;
    if (missing == 0) continue;
    out.push_back({"quantizer.storage_tier", v.strategy->component,
                   v.caps->display + " packed data may rest only in " +
                       tier_mask_text(v.caps->storage_tiers) + ", but placement " +
                       placement_kind_name(v.strategy->placement.kind) + " parks it in " +
                       tier_mask_text(missing),
                   "keep " + v.strategy->component +
                       " resident (offload the other components "
                       "instead), or pick a storage that may rest there: " +
                       alternatives(ctx, [&](const QuantizerCaps& q) {
                         return (q.storage_tiers & rests) == rests;
                       })});
  }
}

namespace {

// SASS for sm_XY runs on devices of the same major version with minor >= Y.
bool archs_cover(const std::vector<std::uint32_t>& archs, std::uint32_t sm) {
  if (archs.empty()) return true;
  for (auto a : archs)
    if (a / 10 == sm / 10 && a <= sm) return true;
  return false;
}

std::string sm_text(std::uint32_t sm) {
  return std::to_string(sm / 10) + "." + std::to_string(sm % 10);
}

}  // namespace

void check_device_features(const RuleContext& ctx, std::vector<Violation>& out) {
  for (const auto& v : ctx.views) {
    if (v.caps == nullptr) continue;
    const Placement& p = v.strategy->placement;
    if ((compute_devices(p) & kDeviceCuda) == 0) continue;
    if (p.gpu < 0 || static_cast<std::size_t>(p.gpu) >= ctx.hardware.gpus.size()) continue;
    const GpuSpec& g = ctx.hardware.gpus[static_cast<std::size_t>(p.gpu)];
    const std::uint32_t sm = g.sm();
    if (v.caps->min_sm > sm)
      out.push_back({"device.features", v.strategy->component,
                     v.caps->display + " needs SM >= " + sm_text(v.caps->min_sm) + ", but gpu " +
                         std::to_string(p.gpu) + " (" + g.name + ") is SM " + sm_text(sm),
                     "use a storage without that requirement (" +
                         alternatives(ctx,
                                      [&](const QuantizerCaps& q) {
                                        return q.min_sm <= sm && q.quality <= v.caps->quality;
                                      }) +
                         "), or a device with SM >= " + sm_text(v.caps->min_sm)});
    if (!archs_cover(v.caps->cuda_archs, sm)) {
      std::string built;
      for (auto a : v.caps->cuda_archs) {
        if (!built.empty()) built += ';';
        built += std::to_string(a);
      }
      out.push_back({"device.features", v.strategy->component,
                     v.caps->display + " carries kernels for sm " + built +
                         " only, none of which "
                         "runs on gpu " +
                         std::to_string(p.gpu) + " (" + g.name + ", sm_" + std::to_string(sm) + ")",
                     "rebuild with CMAKE_CUDA_ARCHITECTURES=" + std::to_string(sm)});
    }
  }
}

const TensorInfo* first_block_quant(const Component& component) noexcept {
  for (const auto& t : component.tensors)
    if (dtype_info(t.dtype).is_block_quant) return &t;
  return nullptr;
}

void check_single_transform(const RuleContext& ctx, std::vector<Violation>& out) {
  // Components seen so far with a storage transform: a repeat is found in O(1), not by a rescan.
  std::unordered_set<std::string_view> transformed;
  for (std::size_t i = 0; i < ctx.views.size(); ++i) {
    const auto& v = ctx.views[i];
    const Storage& s = v.strategy->storage;
    if (s.kind == StorageKind::layerwise_cast && (!s.quantizer.empty() || !s.params.empty()))
      out.push_back({"storage.single_transform", v.strategy->component,
                     "layerwise casting to " + std::string(dtype_name(s.cast_dtype)) +
                         " and quantizer '" + s.quantizer +
                         "' would both apply to the same tensors",
                     "choose one: the layerwise cast or the quantizer"});
    // A 16-bit downcast stores weights in the compute dtype; another 16-bit type would round
    // them twice (to the storage type, then per layer to the compute type).
    const bool cast16 = s.cast_dtype == DType::bf16 || s.cast_dtype == DType::f16;
    if (s.kind == StorageKind::layerwise_cast && cast16 && s.cast_dtype != s.compute_dtype)
      out.push_back(
          {"storage.single_transform", v.strategy->component,
           "a downcast to " + std::string(dtype_name(s.cast_dtype)) + " computed in " +
               std::string(dtype_name(s.compute_dtype)) + " would round the weights twice",
           "cast to the compute dtype (dtype " + std::string(dtype_name(s.compute_dtype)) +
               ") or set compute_dtype " + std::string(dtype_name(s.cast_dtype))});
    // The same component listed twice with two different transforms.
    if (s.kind != StorageKind::native && !transformed.insert(v.strategy->component).second)
      out.push_back({"storage.single_transform", v.strategy->component,
                     "the component is listed twice with two storage transforms",
                     "list each component once with one storage"});
    // Weights already block-quantized in the checkpoint cannot be transformed again.
    if (v.prequantized != nullptr && s.kind != StorageKind::native) {
      const TensorInfo& t = *v.prequantized;
      out.push_back({"storage.single_transform", v.strategy->component,
                     "the checkpoint already stores tensors such as '" + t.name + "' as " +
                         std::string(dtype_name(t.dtype)) + "; a second transform would apply",
                     "use storage native for a pre-quantized checkpoint"});
    }
  }
}

}  // namespace dmem::detail
