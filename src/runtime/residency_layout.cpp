#include "runtime/residency_layout.hpp"

#include <algorithm>
#include <string>
#include <string_view>
#include <unordered_set>
#include <utility>

#include "dmem/module_tree.hpp"
#include "runtime/prequant.hpp"

namespace dmem::detail {
namespace {

std::uint64_t align_up(std::uint64_t v, std::uint64_t a) {
  return (v + a - 1) / a * a;
}

bool castable_dtype(DType t) {
  return t == DType::f16 || t == DType::bf16 || t == DType::f32;
}

Status component_error(const std::string& component, Errc code, std::string message,
                       const char* rule, std::string hint) {
  std::string text = "component '";
  text += component;
  text += "': ";
  text += message;
  return Status(code, std::move(text)).with_rule(rule).with_hint(std::move(hint));
}

// The outermost block containing `name`, or empty.
std::string_view block_of(std::string_view name,
                          const std::unordered_set<std::string_view>& blocks) {
  for (std::size_t pos = name.find('.'); pos != std::string_view::npos;
       pos = name.find('.', pos + 1)) {
    const std::string_view prefix = name.substr(0, pos);
    if (blocks.count(prefix) != 0) return prefix;
  }
  return {};
}

std::string_view leaf_of(std::string_view name) {
  const auto dot = name.rfind('.');
  return dot == std::string_view::npos ? name : name.substr(0, dot);
}

StoreKind park_store(Tier tier) {
  switch (tier) {
    case Tier::pinned:
      return StoreKind::pinned;
    case Tier::pageable:
      return StoreKind::pageable;
    case Tier::disk:
      return StoreKind::disk;
  }
  return StoreKind::pinned;
}

struct Policy {
  StoreKind home = StoreKind::device;  // of groups that are not kept
  bool whole = false;
  bool drop_after_use = false;
  bool load_at_open = false;
  bool in_place = false;
  bool prefetch = false;
  std::uint32_t depth = 0;
};

Policy policy_for(const Placement& p) {
  Policy policy;
  switch (p.kind) {
    case PlacementKind::resident:
      policy.load_at_open = true;
      break;
    case PlacementKind::dropped:
      // Read from the checkpoint when its phase first needs it, freed by finish(): never on the
      // device beside the components of other phases.
      policy.home = StoreKind::disk;
      break;
    case PlacementKind::cpu:
      policy.home = StoreKind::pageable;
      policy.in_place = true;
      break;
    case PlacementKind::model_offload:
      policy.home = park_store(p.park);
      policy.whole = true;
      break;
    case PlacementKind::group_offload:
    case PlacementKind::partial:
      policy.home = park_store(p.park);
      policy.drop_after_use = true;
      policy.prefetch = p.use_stream && p.prefetch > 0;
      policy.depth = p.prefetch;
      break;
    case PlacementKind::sequential:
      policy.home = park_store(p.park);
      policy.drop_after_use = true;
      break;
    case PlacementKind::disk:
      policy.home = StoreKind::disk;
      policy.drop_after_use = true;
      policy.prefetch = true;
      policy.depth = std::max<std::uint32_t>(1, p.prefetch);
      break;
  }
  return policy;
}

}  // namespace

const ComponentLayout* ResidencyLayout::find(std::string_view component) const noexcept {
  for (const auto& c : components)
    if (c.name == component) return &c;
  return nullptr;
}

std::uint64_t device_need(const ResidencyLayout& layout) noexcept {
  std::uint64_t kept = 0;
  for (const GroupLayout& g : layout.groups)
    if (g.load_at_open && !g.in_place) kept += g.device_bytes;
  std::uint64_t moving = 0;
  for (const ComponentLayout& cl : layout.components) {
    std::uint64_t whole = 0;
    std::uint64_t unit_max = 0;
    std::uint64_t scratch_max = 0;
    for (const std::string& unit : cl.units) {
      std::uint64_t bytes = 0;
      for (std::uint32_t g : cl.unit_groups.at(unit)) {
        const GroupLayout& group = layout.groups[g];
        if (!group.load_at_open && !group.in_place) bytes += group.device_bytes;
      }
      std::uint64_t scratch = 0;
      for (std::uint32_t t : cl.unit_tensors.at(unit)) {
        const TensorSlot& slot = layout.tensors[t];
        if (slot.cast) scratch += dtype_bytes(cl.compute_dtype, slot.info->elements()).value_or(0);
      }
      unit_max = std::max(unit_max, bytes + scratch);
      scratch_max = std::max(scratch_max, scratch);
    }
    if (cl.whole) {
      for (std::uint32_t g : cl.groups) {
        const GroupLayout& group = layout.groups[g];
        if (!group.load_at_open && !group.in_place) whole += group.device_bytes;
      }
      unit_max = whole + scratch_max;
    }
    moving = std::max(moving, unit_max);
  }
  return kept + moving;
}

Result<ResidencyLayout> make_layout(
    const Model& model, const Strategy& strategy,
    const std::vector<const QuantizerInstance*>& quantizers,
    const std::vector<std::vector<PrequantWeight>>* prequant) noexcept {
  ResidencyLayout layout;
  std::unordered_set<std::string_view> seen_components;
  for (const ComponentStrategy& cs : strategy.components) {
    const Component* comp = model.find(cs.component);
    if (comp == nullptr) {
      return component_error(cs.component, Errc::not_found, "not in the model", "runtime.component",
                             "check the strategy against `dmem inspect`");
    }
    if (!seen_components.insert(comp->name).second) {
      return component_error(cs.component, Errc::invalid_argument, "appears twice in the strategy",
                             "runtime.component", "give each component one entry");
    }
    const std::size_t strategy_index = static_cast<std::size_t>(&cs - strategy.components.data());
    const QuantizerInstance* quantizer =
        strategy_index < quantizers.size() ? quantizers[strategy_index] : nullptr;
    if (cs.storage.kind == StorageKind::quantized && quantizer == nullptr) {
      return component_error(
          cs.component, Errc::unsupported,
          "quantized storage ('" + cs.storage.quantizer + "') has no quantizer in this session",
          "runtime.storage", "load the quantizer plugin (`dmem plugins` lists what is found)");
    }
    if (cs.placement.gpu != 0) {
      return component_error(
          cs.component, Errc::unsupported,
          "placed on GPU " + std::to_string(cs.placement.gpu) + "; a session drives one device",
          "runtime.gpu", "place every component on GPU 0");
    }
    for (const TensorInfo& t : comp->tensors) {
      if (t.file == kNoFile || t.file >= comp->files.size()) {
        return component_error(
                   cs.component, Errc::invalid_argument,
                   "has no weights on disk (a built-in catalog model is headers only)",
                   "runtime.no_files",
                   "run a real checkpoint, or write a scaled-down one with generated weights "
                   "(`dmem run MODEL --scale-down 16`, write_synthetic_model())")
            .with_tensor(t.name);
      }
    }

    // Pre-quantized weights replace their checkpoint tensor; their state is folded into them.
    std::unordered_map<const TensorInfo*, const PrequantWeight*> prequant_of;
    std::unordered_set<const TensorInfo*> folded;
    if (prequant != nullptr && strategy_index < prequant->size()) {
      for (const PrequantWeight& w : (*prequant)[strategy_index]) {
        prequant_of.emplace(w.weight, &w);
        folded.insert(w.state.begin(), w.state.end());
      }
    }

    const ComponentSummary summary = summarize(*comp);
    std::unordered_set<std::string_view> blocks;
    for (const BlockInfo& b : summary.blocks) blocks.insert(b.name);
    std::unordered_set<std::string_view> castable;
    std::unordered_set<std::string_view> linear;
    for (const LeafInfo& leaf : summary.leaves) {
      if (leaf.castable) castable.insert(leaf.name);
      if (leaf.linear) linear.insert(leaf.name);
    }

    ComponentLayout cl;
    cl.name = comp->name;
    cl.placement = cs.placement;
    cl.storage = cs.storage;
    cl.compute_dtype = cs.storage.compute_dtype;
    const Policy policy = policy_for(cs.placement);
    cl.whole = policy.whole;
    cl.prefetch = policy.prefetch;
    cl.prefetch_depth = policy.depth;
    const auto ci = static_cast<std::uint32_t>(layout.components.size());

    // Natural unit order: first appearance in the file, but a block sequence in index order.
    std::unordered_map<std::string_view, const BlockSequence*> sequence_of;
    for (const BlockSequence& seq : summary.sequences)
      for (const BlockInfo& b : seq.blocks) sequence_of.emplace(b.name, &seq);
    std::unordered_set<std::string> emitted;
    std::unordered_map<std::string, std::uint32_t> block_ordinal;
    std::uint32_t ordinal = 0;
    for (const TensorInfo& t : comp->tensors) {
      const std::string_view block = block_of(t.name, blocks);
      if (!block.empty()) {
        auto it = sequence_of.find(block);
        if (it != sequence_of.end()) {
          for (const BlockInfo& b : it->second->blocks) {
            if (emitted.insert(b.name).second) {
              cl.units.push_back(b.name);
              block_ordinal[b.name] = ordinal++;
            }
          }
        }
        if (emitted.insert(std::string(block)).second) {
          cl.units.emplace_back(block);
          block_ordinal[std::string(block)] = ordinal++;
        }
      } else {
        const std::string unit(t.name.substr(0, t.name.find('.')));
        if (emitted.insert(unit).second) cl.units.push_back(unit);
      }
    }
    std::unordered_map<std::string, std::size_t> unit_rank;
    for (std::size_t i = 0; i < cl.units.size(); ++i) unit_rank[cl.units[i]] = i;

    // Group key of each tensor, by placement.
    std::unordered_map<std::string, std::uint32_t> group_index;
    std::vector<std::pair<std::size_t, std::uint32_t>> group_rank;  // unit rank, group
    const Placement& p = cs.placement;
    for (const TensorInfo& t : comp->tensors) {
      if (folded.count(&t) != 0) continue;
      TensorSlot slot;
      slot.info = &t;
      slot.component = ci;
      const std::string_view block = block_of(t.name, blocks);
      slot.unit = block.empty() ? t.name.substr(0, t.name.find('.')) : std::string(block);
      slot.leaf = std::string(leaf_of(t.name));
      slot.stored_dtype = t.dtype;
      slot.stored_bytes = t.nbytes;
      if (cs.storage.kind == StorageKind::layerwise_cast && castable.count(slot.leaf) != 0 &&
          castable_dtype(t.dtype)) {
        slot.cast = true;
        slot.stored_dtype = cs.storage.cast_dtype;
        slot.stored_bytes = dtype_bytes(cs.storage.cast_dtype, t.elements()).value_or(t.nbytes);
      }
      // Quantizers act on linear weights only; norms, embeddings and biases keep their dtype.
      const bool is_weight =
          t.name.size() > 7 && t.name.compare(t.name.size() - 7, 7, ".weight") == 0;
      if (auto pq = prequant_of.find(&t); pq != prequant_of.end()) {
        slot.info = &pq->second->logical;
        slot.prequant = pq->second;
        slot.cast = false;
        slot.quantized = true;
        slot.stored_dtype = pq->second->logical.dtype;
        slot.stored_bytes = pq->second->logical.nbytes;
      } else if (quantizer != nullptr && is_weight && t.shape.size() == 2 &&
                 linear.count(slot.leaf) != 0 && castable_dtype(t.dtype)) {
        // The quantizer is given the tensor's dtype when it takes it, f32 otherwise.
        const DType input = quantizer->accepts(t.dtype) ? t.dtype : DType::f32;
        // A tensor the quantizer refuses (rows not whole blocks of its type, say) keeps its
        // dtype, as the planner counts it.
        auto bytes = quantizer->stored_bytes(input, t.shape);
        if (bytes) {
          slot.quantized = true;
          slot.stored_dtype = input;
          slot.stored_bytes = *bytes;
        }
      }

      std::string key;
      bool keep = p.kind == PlacementKind::resident;
      const auto ord = block_ordinal.find(slot.unit);
      const bool in_block = ord != block_ordinal.end();
      if (p.kind == PlacementKind::sequential ||
          (p.kind == PlacementKind::group_offload && p.level == OffloadLevel::leaf)) {
        key = slot.leaf;
      } else if (p.kind == PlacementKind::group_offload && in_block) {
        const std::uint32_t per = std::max<std::uint32_t>(1, p.blocks_per_group);
        key = "blocks#" + std::to_string(ord->second / per);
      } else {
        key = slot.unit;
      }
      if (p.kind == PlacementKind::partial) keep = !in_block || ord->second < p.resident_blocks;

      auto [it, inserted] =
          group_index.try_emplace(key, static_cast<std::uint32_t>(layout.groups.size()));
      if (inserted) {
        GroupLayout g;
        g.component = ci;
        g.name = key;
        if (key.rfind("blocks#", 0) == 0) g.name = slot.unit + (p.blocks_per_group > 1 ? "+" : "");
        g.keep = keep;
        g.load_at_open = keep || policy.load_at_open;
        g.drop_after_use = !keep && policy.drop_after_use;
        g.in_place = policy.in_place;
        layout.groups.push_back(std::move(g));
        cl.groups.push_back(it->second);
        group_rank.emplace_back(unit_rank[slot.unit], it->second);
      }
      GroupLayout& g = layout.groups[it->second];
      slot.group = it->second;
      slot.home = keep ? StoreKind::device : policy.home;
      if (g.in_place) slot.home = StoreKind::pageable;
      const auto index = static_cast<std::uint32_t>(layout.tensors.size());
      g.tensors.push_back(index);
      if (!g.in_place) {
        slot.group_offset = g.device_bytes;
        g.device_bytes = align_up(g.device_bytes + slot.stored_bytes, kTensorAlign);
      }
      switch (slot.home) {
        case StoreKind::pinned:
          slot.home_offset = layout.pinned_bytes;
          layout.pinned_bytes = align_up(layout.pinned_bytes + slot.stored_bytes, kTensorAlign);
          break;
        case StoreKind::pageable:
          slot.home_offset = layout.pageable_bytes;
          layout.pageable_bytes = align_up(layout.pageable_bytes + slot.stored_bytes, kTensorAlign);
          break;
        case StoreKind::disk:
          if (slot.cast || slot.quantized) {
            slot.home_offset = layout.cache_bytes;
            layout.cache_bytes = align_up(layout.cache_bytes + slot.stored_bytes, 4096);
          } else {
            slot.home_offset = t.offset;
          }
          break;
        case StoreKind::device:
          break;
      }
      cl.unit_groups[slot.unit];  // every unit has an entry
      auto& ug = cl.unit_groups[slot.unit];
      if (std::find(ug.begin(), ug.end(), slot.group) == ug.end()) ug.push_back(slot.group);
      cl.unit_tensors[slot.unit].push_back(index);
      cl.leaf_tensors[slot.leaf].push_back(index);
      layout.tensors.push_back(std::move(slot));
    }
    // Groups in natural execution order (stable for groups of one unit).
    std::stable_sort(group_rank.begin(), group_rank.end(),
                     [](const auto& a, const auto& b) { return a.first < b.first; });
    cl.groups.clear();
    for (const auto& gr : group_rank) cl.groups.push_back(gr.second);
    for (std::uint32_t g : cl.groups) {
      const GroupLayout& group = layout.groups[g];
      if (group.in_place) continue;
      if (group.load_at_open) layout.device_at_open += group.device_bytes;
      if (!group.keep)
        layout.largest_streamed = std::max(layout.largest_streamed, group.device_bytes);
    }
    layout.components.push_back(std::move(cl));
  }
  return layout;
}

}  // namespace dmem::detail
