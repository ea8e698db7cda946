// ResidencyLayout: how a Strategy maps onto a model at run time — every tensor's home store and
// stored dtype, the groups that move together, and the units a host acquires. A pure function of
// model and strategy (no memory is touched), so the policy of each placement is testable alone.
#pragma once

#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

#include "dmem/model.hpp"
#include "dmem/quantizer_instance.hpp"
#include "dmem/session.hpp"
#include "dmem/status.hpp"
#include "dmem/strategy.hpp"

namespace dmem::detail {

struct PrequantWeight;

inline constexpr std::uint64_t kTensorAlign = 64;

struct TensorSlot {
  const TensorInfo* info = nullptr;
  std::uint32_t component = 0;
  std::uint32_t group = 0;
  std::string unit;  ///< acquire unit: block name or top-level module
  std::string leaf;  ///< module owning it (name minus the parameter)
  StoreKind home = StoreKind::device;
  DType stored_dtype = DType::f32;  ///< dtype at rest (cast_dtype when layerwise-cast; for a
                                    ///< quantized tensor the dtype its quantizer was given)
  std::uint64_t stored_bytes = 0;
  bool cast = false;       ///< layerwise cast: upcast to compute_dtype on acquire
  bool quantized = false;  ///< packed by the component's quantizer
  /// Stored pre-quantized in the checkpoint: `info` is its logical tensor, read as these pieces.
  const PrequantWeight* prequant = nullptr;
  std::uint64_t home_offset = 0;   ///< offset in the pinned/pageable region or the cache file
  std::uint64_t group_offset = 0;  ///< offset in the group's device buffer
};

/// Weights that move together.
struct GroupLayout {
  std::uint32_t component = 0;
  std::string name;
  std::vector<std::uint32_t> tensors;  ///< indexes into ResidencyLayout::tensors
  std::uint64_t device_bytes = 0;      ///< aligned sum of stored bytes
  bool keep = false;          ///< stays on the device for the whole session (resident, partial's k)
  bool load_at_open = false;  ///< placed on the device by the loader
  bool drop_after_use = false;  ///< leaves the device when its last handle is released
  bool in_place = false;        ///< computed where it rests (CPU placement): no device copy
};

struct ComponentLayout {
  std::string name;
  Placement placement;
  Storage storage;
  DType compute_dtype = DType::bf16;
  bool whole = false;  ///< acquiring any unit brings every group (model offload)
  bool prefetch = false;
  std::uint32_t prefetch_depth = 0;
  std::vector<std::uint32_t> groups;  ///< in natural execution order
  std::vector<std::string> units;     ///< in natural order
  std::unordered_map<std::string, std::vector<std::uint32_t>> unit_groups;
  std::unordered_map<std::string, std::vector<std::uint32_t>> unit_tensors;
  std::unordered_map<std::string, std::vector<std::uint32_t>> leaf_tensors;
};

struct ResidencyLayout {
  std::vector<TensorSlot> tensors;
  std::vector<GroupLayout> groups;
  std::vector<ComponentLayout> components;  ///< in strategy order
  std::uint64_t pinned_bytes = 0;           ///< homes in the pinned arena
  std::uint64_t pageable_bytes = 0;         ///< homes in pageable RAM
  std::uint64_t cache_bytes = 0;            ///< transformed weights whose home is disk
  std::uint64_t device_at_open = 0;         ///< groups the loader places on the device
  std::uint64_t largest_streamed = 0;       ///< largest group that moves
  [[nodiscard]] const ComponentLayout* find(std::string_view component) const noexcept;
};

/// Device bytes the layout needs to run: its kept groups plus the largest unit that moves
/// (a whole component for model offload), with the upcast scratch of its cast weights.
[[nodiscard]] std::uint64_t device_need(const ResidencyLayout& layout) noexcept;

/// `quantizers[i]` is the configured quantizer of the strategy's i-th component when its storage
/// is quantized (null otherwise, or an empty vector when none is). Its 2-D linear weights in
/// f32/f16/bf16 are packed; everything else keeps its dtype. Fails (naming component, tensor and
/// rule) for quantized storage without a quantizer, components missing from the model, tensors
/// without files, placements on a GPU index the session does not drive. `prequant[i]` lists the
/// strategy's i-th component's pre-quantized weights (runtime/prequant.hpp): each becomes one
/// packed tensor and the keys it folds in are not loaded on their own.
[[nodiscard]] Result<ResidencyLayout> make_layout(
    const Model& model, const Strategy& strategy,
    const std::vector<const QuantizerInstance*>& quantizers = {},
    const std::vector<std::vector<PrequantWeight>>* prequant = nullptr) noexcept;

}  // namespace dmem::detail
