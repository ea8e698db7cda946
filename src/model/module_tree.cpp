#include "dmem/module_tree.hpp"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <map>
#include <string_view>
#include <unordered_map>

namespace dmem {
inline namespace v1 {

namespace {

std::vector<std::string_view> split(std::string_view name) {
  std::vector<std::string_view> parts;
  std::size_t start = 0;
  while (true) {
    auto dot = name.find('.', start);
    parts.push_back(name.substr(start, dot == std::string_view::npos ? dot : dot - start));
    if (dot == std::string_view::npos) break;
    start = dot + 1;
  }
  return parts;
}

bool is_index(std::string_view s) {
  if (s.empty() || s.size() > 9) return false;
  return std::all_of(s.begin(), s.end(),
                     [](char c) { return std::isdigit(static_cast<unsigned char>(c)); });
}

// The patterns we use are literals, optionally anchored with ^ and $ (as in diffusers'
// re.search over fully qualified names); match them without a regex engine.
bool pattern_matches(std::string_view pattern, std::string_view name) {
  bool anchor_begin = !pattern.empty() && pattern.front() == '^';
  if (anchor_begin) pattern.remove_prefix(1);
  bool anchor_end = !pattern.empty() && pattern.back() == '$';
  if (anchor_end) pattern.remove_suffix(1);
  if (anchor_begin && anchor_end) return name == pattern;
  if (anchor_begin) return name.substr(0, pattern.size()) == pattern;
  if (anchor_end)
    return name.size() >= pattern.size() && name.substr(name.size() - pattern.size()) == pattern;
  return name.find(pattern) != std::string_view::npos;
}

bool is_embedding_name(std::string_view module) {
  static constexpr std::string_view kEmbeddings[] = {
      "embed_tokens", "token_embedding", "position_embedding", "relative_attention_bias", "wte",
      "wpe",          "word_embeddings", "position_embeddings"};
  if (module == "shared" || module == "encoder.embed_tokens") return true;
  for (auto e : kEmbeddings) {
    auto pos = module.rfind(e);
    if (pos != std::string_view::npos && pos + e.size() == module.size()) return true;
  }
  return false;
}

struct LeafAcc {
  std::uint64_t bytes = 0;
  std::uint64_t params = 0;
  std::uint64_t weight_bytes = 0;
  std::uint64_t weight_params = 0;
  std::size_t weight_rank = 0;
  int block = -1;
  std::size_t order = 0;
  const char* prequantized = nullptr;  // "bnb nf4", "bnb fp4", "bnb int8", "fp8 scaled"
};

// Quantized Linears keep their state beside their weight. bitsandbytes (FORMATS.md §3.5, §4.3):
// `M.weight.absmax`, `M.weight.quant_map`, `M.weight.nested_*`,
// `M.weight.quant_state.bitsandbytes__nf4|fp4`, and `M.SCB` / `M.weight_format` for int8. Returns
// the module M such a tensor belongs to (empty for other names) and the storage it marks.
std::string_view bnb_module(std::string_view name, const char*& kind) {
  kind = nullptr;
  static constexpr std::string_view kAux[] = {".weight.absmax",
                                              ".weight.quant_map",
                                              ".weight.nested_absmax",
                                              ".weight.nested_quant_map",
                                              ".weight.quant_state.bitsandbytes__nf4",
                                              ".weight.quant_state.bitsandbytes__fp4"};
  for (const std::string_view aux : kAux) {
    if (name.size() <= aux.size() || name.substr(name.size() - aux.size()) != aux) continue;
    if (aux.ends_with("__nf4")) kind = "bnb nf4";
    if (aux.ends_with("__fp4")) kind = "bnb fp4";
    return name.substr(0, name.size() - aux.size());
  }
  constexpr std::string_view kScb = ".SCB";
  if (name.size() > kScb.size() && name.substr(name.size() - kScb.size()) == kScb) {
    kind = "bnb int8";
    return name.substr(0, name.size() - kScb.size());
  }
  // fp8 weights with a scale (dmem convert, vLLM/ModelOpt `weight_scale`, ComfyUI `scale_weight`):
  // the scale is the weight's, and the Session decodes the pair (runtime/prequant.hpp).
  for (const std::string_view scale :
       {std::string_view(".weight_scale"), std::string_view(".scale_weight")}) {
    if (name.size() <= scale.size() || name.substr(name.size() - scale.size()) != scale) continue;
    kind = "fp8 scaled";
    return name.substr(0, name.size() - scale.size());
  }
  return {};
}

}  // namespace

std::vector<std::string> cast_skip_patterns(const Component& component) {
  // diffusers hooks/layerwise_casting.py DEFAULT_SKIP_MODULES_PATTERN.
  std::vector<std::string> patterns{"pos_embed", "patch_embed", "norm", "^proj_in$", "^proj_out$"};
  // Per-model _skip_layerwise_casting_patterns and _keep_in_fp32_modules (FORMATS.md §5.3).
  const std::string& cls = component.class_name;
  if (cls == "WanTransformer3DModel") {
    for (const char* p : {"patch_embedding", "condition_embedder", "rope", "time_embedder",
                          "scale_shift_table", "norm1", "norm2", "norm3"})
      patterns.emplace_back(p);
  } else if (cls == "T5EncoderModel" || cls == "UMT5EncoderModel") {
    patterns.emplace_back("wo");  // transformers keeps T5's wo in fp32
  }
  return patterns;
}

ComponentSummary summarize(const Component& component) {
  ComponentSummary s;
  s.name = component.name;
  s.role = component.role;
  const auto skip = cast_skip_patterns(component);

  // Pass 1: find blocks. A block is the first numbered child (`transformer_blocks.12`) under
  // which at least one tensor sits in a sub-module; parameters directly under it
  // (`blocks.3.scale_shift_table`) belong to it too. Numbered leaves (`to_out.0.weight`,
  // `mlp.0.weight`) never qualify. A UNet/VAE `mid_block` is one block of its own: it sits
  // between the down and up sequences and diffusers offloads it as one unit.
  // Per tensor only pointers to interned names (map keys are stable): memory stays a small
  // multiple of the header for checkpoints with hundreds of thousands of tensors.
  struct Candidate {
    const std::string* prefix = nullptr;  // key of seq_children
    const std::string* block = nullptr;   // key of deep
  };
  std::vector<Candidate> cand(component.tensors.size());
  std::map<std::string, std::map<std::uint64_t, std::string>> seq_children;
  std::map<std::string, bool> deep;  // block name -> owns a sub-module
  for (std::size_t t = 0; t < component.tensors.size(); ++t) {
    auto parts = split(component.tensors[t].name);
    for (std::size_t i = 0; i + 1 < parts.size(); ++i) {
      const bool mid = parts[i] == "mid_block";
      if (!mid && (i == 0 || !is_index(parts[i]))) continue;
      std::string prefix;
      for (std::size_t j = 0; j < (mid ? i + 1 : i); ++j) {
        if (j) prefix += '.';
        prefix += parts[j];
      }
      std::uint64_t index = 0;
      if (!mid) std::from_chars(parts[i].data(), parts[i].data() + parts[i].size(), index);
      std::string block = mid ? prefix : prefix + "." + std::string(parts[i]);
      auto [deep_it, fresh] = deep.try_emplace(std::move(block), false);
      if (i + 2 < parts.size() || mid) deep_it->second = true;
      auto seq_it = seq_children.try_emplace(std::move(prefix)).first;
      seq_it->second[index] = deep_it->first;
      cand[t] = Candidate{&seq_it->first, &deep_it->first};
      break;
    }
  }
  std::vector<const std::string*> block_of(component.tensors.size(), nullptr);
  std::unordered_map<std::string, int> block_index;
  std::vector<std::pair<std::size_t, std::string>> first_seen;  // tensor order of sequences
  {
    std::unordered_map<std::string, std::size_t> seq_first;
    for (std::size_t t = 0; t < component.tensors.size(); ++t) {
      const auto& c = cand[t];
      if (c.block == nullptr || !deep[*c.block]) continue;
      // A container with a single numbered child is not a repeated block (mid_block excepted).
      const bool mid = *c.block == *c.prefix;
      if (!mid && seq_children[*c.prefix].size() < 2) continue;
      block_of[t] = c.block;
      if (seq_first.emplace(*c.prefix, t).second) first_seen.emplace_back(t, *c.prefix);
    }
  }
  for (const auto& [first, prefix] : first_seen) {
    BlockSequence seq;
    seq.prefix = prefix;
    for (const auto& [idx, name] : seq_children[prefix]) {
      if (!deep[name]) continue;
      BlockInfo b;
      b.name = name;
      block_index[name] = static_cast<int>(s.blocks.size());
      s.blocks.push_back(b);
    }
    s.sequences.push_back(std::move(seq));
  }

  // Pass 2: accumulate component, dtype, block and leaf sizes.
  std::map<DType, std::uint64_t> by_dtype;
  std::unordered_map<std::string_view, LeafAcc> leaves;  // views into the tensor names
  for (std::size_t t = 0; t < component.tensors.size(); ++t) {
    const auto& ti = component.tensors[t];
    const std::uint64_t params = ti.elements();
    s.tensors += 1;
    s.params += params;
    s.bytes += ti.nbytes;
    by_dtype[ti.dtype] += ti.nbytes;
    int bi = -1;
    if (block_of[t] != nullptr) {
      bi = block_index[*block_of[t]];
      auto& b = s.blocks[static_cast<std::size_t>(bi)];
      b.bytes += ti.nbytes;
      b.params += params;
      b.tensors += 1;
      s.block_bytes += ti.nbytes;
    } else {
      s.non_block_bytes += ti.nbytes;
    }
    auto dot = ti.name.rfind('.');
    std::string_view module = dot == std::string::npos ? std::string_view(ti.name)
                                                       : std::string_view(ti.name).substr(0, dot);
    std::string_view param =
        dot == std::string::npos ? std::string_view{} : std::string_view(ti.name).substr(dot + 1);
    const char* prequantized = nullptr;
    if (const std::string_view owner = bnb_module(ti.name, prequantized); !owner.empty()) {
      module = owner;  // the quantization state belongs to the Linear, not a module of its own
      param = {};
    }
    auto [it, inserted] = leaves.try_emplace(module);
    auto& leaf = it->second;
    if (prequantized != nullptr) leaf.prequantized = prequantized;
    if (inserted) leaf.order = t;
    leaf.bytes += ti.nbytes;
    leaf.params += params;
    leaf.block = bi;
    if (param == "weight") {
      leaf.weight_bytes += ti.nbytes;
      leaf.weight_params += params;
      leaf.weight_rank = ti.shape.size();
    }
  }

  std::vector<std::pair<std::size_t, const std::pair<const std::string_view, LeafAcc>*>> order;
  order.reserve(leaves.size());
  for (const auto& entry : leaves) order.emplace_back(entry.second.order, &entry);
  std::sort(order.begin(), order.end(),
            [](const auto& a, const auto& b) { return a.first < b.first; });
  s.leaves.reserve(order.size());
  for (const auto& entry : order) {
    const std::string_view name = entry.second->first;  // not a structured binding: lambdas use it
    const LeafAcc& acc = entry.second->second;
    LeafInfo leaf;
    leaf.name = std::string(name);
    leaf.bytes = acc.bytes;
    leaf.params = acc.params;
    leaf.block = acc.block;
    // Linear, Conv and Embedding modules have a weight of rank >= 2; norms and bare
    // parameters (scale_shift_table, gamma) do not and keep their dtype.
    const bool castable_type = acc.weight_rank >= 2;
    leaf.castable = castable_type &&
                    std::none_of(skip.begin(), skip.end(),
                                 [&](const std::string& p) { return pattern_matches(p, name); });
    leaf.linear = acc.weight_rank == 2 && !is_embedding_name(name);
    if (acc.prequantized != nullptr) {
      // Already quantized: no storage transform applies to it again.
      leaf.castable = false;
      leaf.linear = false;
      leaf.prequantized = acc.prequantized;
      s.prequantized_bytes += acc.bytes;
      if (s.prequantized.empty()) s.prequantized = acc.prequantized;
    }
    if (leaf.castable) {
      s.castable_bytes += acc.bytes;
      if (acc.block >= 0) s.blocks[static_cast<std::size_t>(acc.block)].castable_bytes += acc.bytes;
    }
    if (leaf.linear) {
      s.linear_bytes += acc.weight_bytes;
      s.linear_params += acc.weight_params;
      if (acc.block >= 0)
        s.blocks[static_cast<std::size_t>(acc.block)].linear_bytes += acc.weight_bytes;
    }
    if (leaf.bytes > s.max_leaf_bytes) {
      s.max_leaf_bytes = leaf.bytes;
      s.largest_leaf = std::string(name);
    }
    s.leaves.push_back(std::move(leaf));
  }

  for (auto& seq : s.sequences) {
    for (const auto& [idx, name] : seq_children[seq.prefix]) {
      auto it = block_index.find(name);
      if (it != block_index.end())
        seq.blocks.push_back(s.blocks[static_cast<std::size_t>(it->second)]);
    }
  }
  for (const auto& b : s.blocks) {
    if (b.bytes > s.max_block_bytes) {
      s.max_block_bytes = b.bytes;
      s.largest_block = b.name;
    }
  }
  for (const auto& [dt, bytes] : by_dtype) s.bytes_by_dtype.emplace_back(dt, bytes);
  std::stable_sort(s.bytes_by_dtype.begin(), s.bytes_by_dtype.end(),
                   [](const auto& a, const auto& b) { return a.second > b.second; });
  return s;
}

}  // namespace v1
}  // namespace dmem
