// scale_down: the same pipeline with hidden sizes and layer counts divided by a factor, for
// synthetic runs (docs/synthetic.md). Pure arithmetic on headers and config text.
#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <map>
#include <numeric>
#include <set>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "dmem/module_tree.hpp"
#include "dmem/synthetic.hpp"
#include "format/json_util.hpp"
#include "model/synthetic_config.hpp"

namespace dmem {
inline namespace v1 {

namespace {

using nlohmann::json;

// Channels entering or leaving a model up to this size stay, so latents keep their shape.
constexpr std::uint64_t kMaxPinnedChannels = 64;

std::uint64_t ceil_div(std::uint64_t d, double factor) {
  const double q = std::ceil(static_cast<double>(d) / factor);
  return q < 1.0 ? 1 : static_cast<std::uint64_t>(q);
}

// Value -> scaled value, the same for every tensor of the model, so shared sizes stay shared.
class DimMap {
 public:
  explicit DimMap(double factor) : factor_(factor) {}

  void pin(std::uint64_t d) {
    if (d != 0 && d <= kMaxPinnedChannels) pinned_.insert(d);
  }
  void require_multiple(std::uint64_t d, std::uint64_t block) {
    if (block <= 1) return;
    auto& a = align_[d];
    a = a == 0 ? block : std::lcm(a, block);
  }

  [[nodiscard]] std::uint64_t operator()(std::uint64_t d) const {
    if (d <= kScaleDownKeepDim || pinned_.count(d) != 0) return d;
    std::uint64_t q = ceil_div(d, factor_);
    if (auto it = align_.find(d); it != align_.end())
      q = (q + it->second - 1) / it->second * it->second;
    return std::min(q, d);
  }
  [[nodiscard]] std::uint32_t u32(std::uint32_t d) const {
    return static_cast<std::uint32_t>((*this)(d));  // never larger than d
  }

 private:
  double factor_;
  std::set<std::uint64_t> pinned_;
  std::unordered_map<std::uint64_t, std::uint64_t> align_;
};

std::vector<std::string_view> split(std::string_view name) {
  std::vector<std::string_view> parts;
  std::size_t start = 0;
  while (true) {
    const auto dot = name.find('.', start);
    parts.push_back(name.substr(start, dot == std::string_view::npos ? dot : dot - start));
    if (dot == std::string_view::npos) break;
    start = dot + 1;
  }
  return parts;
}

bool is_index(std::string_view s) {
  return !s.empty() && s.size() <= 9 && s.find_first_not_of("0123456789") == std::string_view::npos;
}

std::string module_of(const std::string& name) {
  const auto dot = name.rfind('.');
  return dot == std::string::npos ? name : name.substr(0, dot);
}

struct SequenceCut {
  std::uint32_t count = 0;
  std::uint32_t kept = 0;
};

// Which tensors survive, and the block sequences that were shortened.
struct Selection {
  std::vector<bool> keep;
  std::vector<SequenceCut> cuts;
};

// A sequence is shortened when its blocks repeat one structure: at least two blocks, three in
// four with the same tensor names and shapes (T5's block 0 and SD3's last block differ). The
// levels of a U-Net or VAE differ in width; inside them only the transformer layers of each
// attention (`…transformer_blocks.N`) are shortened, since diffusers derives resnets and levels
// from layers_per_block and block_out_channels.
Selection select_tensors(const Component& c, const ScaleDown& o) {
  const auto keep_of = [&](std::size_t n) {
    const std::uint64_t k = std::max<std::uint64_t>(o.min_blocks, ceil_div(n, o.factor));
    return static_cast<std::uint32_t>(std::min<std::uint64_t>(k, n));
  };
  const ComponentSummary s = summarize(c);
  std::unordered_map<std::string, int> leaf_block;
  for (const auto& leaf : s.leaves) leaf_block.emplace(leaf.name, leaf.block);
  struct Where {
    std::size_t seq = 0, pos = 0;
  };
  std::unordered_map<std::string, Where> where;
  for (std::size_t q = 0; q < s.sequences.size(); ++q)
    for (std::size_t p = 0; p < s.sequences[q].blocks.size(); ++p)
      where[s.sequences[q].blocks[p].name] = Where{q, p};

  // Block of each tensor and the signature of each block.
  std::vector<const std::string*> block_of(c.tensors.size(), nullptr);
  std::unordered_map<std::string, std::vector<std::string>> sig;
  for (std::size_t t = 0; t < c.tensors.size(); ++t) {
    auto it = leaf_block.find(module_of(c.tensors[t].name));
    if (it == leaf_block.end() || it->second < 0) continue;
    const std::string& b = s.blocks[static_cast<std::size_t>(it->second)].name;
    block_of[t] = &b;
    std::string entry = c.tensors[t].name.substr(b.size());
    entry += ':';
    entry += dtype_name(c.tensors[t].dtype);
    for (auto d : c.tensors[t].shape) entry.append(",").append(std::to_string(d));
    sig[b].push_back(std::move(entry));
  }
  std::vector<bool> homogeneous(s.sequences.size(), false);
  Selection out;
  for (std::size_t q = 0; q < s.sequences.size(); ++q) {
    const auto& blocks = s.sequences[q].blocks;
    if (blocks.size() < 2) continue;
    std::map<std::string, std::size_t> counts;
    for (const auto& b : blocks) {
      auto v = sig[b.name];
      std::sort(v.begin(), v.end());
      std::string joined;
      for (const auto& e : v) joined.append(e).push_back(';');
      ++counts[joined];
    }
    std::size_t best = 0;
    for (const auto& [k, n] : counts) best = std::max(best, n);
    homogeneous[q] = best * 4 >= blocks.size() * 3;
    if (homogeneous[q])
      out.cuts.push_back({static_cast<std::uint32_t>(blocks.size()), keep_of(blocks.size())});
  }

  // Nested transformer layers outside shortened sequences: indices per container.
  std::map<std::string, std::set<std::uint64_t>> nested;
  std::vector<std::pair<std::string, std::uint64_t>> nested_of(c.tensors.size());
  for (std::size_t t = 0; t < c.tensors.size(); ++t) {
    if (block_of[t] != nullptr && homogeneous[where[*block_of[t]].seq]) continue;
    const auto parts = split(c.tensors[t].name);
    for (std::size_t i = 1; i + 2 < parts.size(); ++i) {
      if (parts[i] != "transformer_blocks" || !is_index(parts[i + 1])) continue;
      std::string key;
      for (std::size_t j = 0; j <= i; ++j) key.append(j ? "." : "").append(parts[j]);
      std::uint64_t idx = 0;
      std::from_chars(parts[i + 1].data(), parts[i + 1].data() + parts[i + 1].size(), idx);
      nested[key].insert(idx);
      nested_of[t] = {std::move(key), idx};
      break;
    }
  }
  for (const auto& [key, idx] : nested)
    out.cuts.push_back({static_cast<std::uint32_t>(idx.size()), keep_of(idx.size())});

  out.keep.assign(c.tensors.size(), true);
  for (std::size_t t = 0; t < c.tensors.size(); ++t) {
    if (block_of[t] != nullptr) {
      const Where w = where[*block_of[t]];
      if (homogeneous[w.seq]) {
        out.keep[t] = w.pos < keep_of(s.sequences[w.seq].blocks.size());
        continue;
      }
    }
    if (!nested_of[t].first.empty()) {
      const auto& idx = nested[nested_of[t].first];
      const auto rank =
          static_cast<std::size_t>(std::distance(idx.begin(), idx.find(nested_of[t].second)));
      out.keep[t] = rank < keep_of(idx.size());
    }
  }
  return out;
}

std::uint32_t scaled_layers(std::uint32_t layers, const std::vector<SequenceCut>& cuts,
                            const ScaleDown& o) {
  if (layers == 0 || cuts.empty()) return layers;
  std::uint64_t total = 0, kept = 0;
  for (const auto& c : cuts) {
    total += c.count;
    kept += c.kept;
  }
  if (total == layers) return static_cast<std::uint32_t>(kept);
  for (const auto& c : cuts)
    if (c.count == layers) return c.kept;
  const std::uint64_t k = std::max<std::uint64_t>(o.min_blocks, ceil_div(layers, o.factor));
  return static_cast<std::uint32_t>(std::min<std::uint64_t>(k, layers));
}

ArchInfo scale_arch(const ArchInfo& a, const DimMap& f, std::uint32_t layers) {
  ArchInfo s = a;
  s.hidden = f.u32(a.hidden);
  s.ffn = f.u32(a.ffn);
  s.text_dim = f.u32(a.text_dim);
  s.vocab = f.u32(a.vocab);
  s.in_channels = f.u32(a.in_channels);
  s.latent_channels = f.u32(a.latent_channels);
  s.layers = layers;
  // Heads stay; a head shrinks with the width it divides.
  if (a.heads != 0 && std::uint64_t{a.heads} * a.head_dim == a.hidden && s.hidden % a.heads == 0)
    s.head_dim = s.hidden / a.heads;
  else
    s.head_dim = f.u32(a.head_dim);
  return s;
}

// ---- config.json ---------------------------------------------------------------------------

bool in(std::string_view key, std::initializer_list<std::string_view> keys) {
  return std::find(keys.begin(), keys.end(), key) != keys.end();
}

struct ConfigScaler {
  const DimMap& f;
  const ScaleDown& o;
  const ArchInfo& before;
  const ArchInfo& after;
  bool unet = false;  // attention_head_dim counts heads in UNet2DConditionModel

  [[nodiscard]] std::uint64_t count(std::uint64_t n) const {
    if (n == 0) return 0;
    const std::uint64_t k = std::max<std::uint64_t>(o.min_blocks, ceil_div(n, o.factor));
    return std::min(k, n);
  }

  // Applies `fn` to an unsigned integer or to each one of an array of them.
  template <class Fn>
  static void each_uint(json& v, Fn fn) {
    if (v.is_number_unsigned() || (v.is_number_integer() && v.get<std::int64_t>() >= 0)) {
      v = fn(v.get<std::uint64_t>());
    } else if (v.is_array()) {
      for (auto& e : v)
        if (e.is_number_unsigned() || (e.is_number_integer() && e.get<std::int64_t>() >= 0))
          e = fn(e.get<std::uint64_t>());
    }
  }

  void head_dim(json& v) const {
    each_uint(v, [&](std::uint64_t d) -> std::uint64_t {
      return d == before.head_dim ? after.head_dim : f(d);
    });
  }

  void scale(json& obj) const {
    if (!obj.is_object()) return;
    std::uint64_t depth_after = 0;
    for (auto& [key, v] : obj.items()) {
      if (v.is_object()) {
        scale(v);
      } else if (in(key, {"hidden_size",
                          "intermediate_size",
                          "d_model",
                          "d_ff",
                          "joint_attention_dim",
                          "pooled_projection_dim",
                          "caption_projection_dim",
                          "text_dim",
                          "ffn_dim",
                          "freq_dim",
                          "vocab_size",
                          "projection_dim",
                          "cross_attention_dim",
                          "projection_class_embeddings_input_dim",
                          "addition_time_embed_dim",
                          "block_out_channels",
                          "base_dim",
                          "z_dim",
                          "latent_channels",
                          "in_channels",
                          "out_channels",
                          "out_hidden_size",
                          "image_dim",
                          "added_kv_proj_dim"})) {
        each_uint(v, [&](std::uint64_t d) { return f(d); });
      } else if (key == "attention_head_dim" && !unet) {
        head_dim(v);
      } else if (in(key, {"head_dim", "d_kv"})) {
        head_dim(v);
      } else if (in(key, {"num_layers", "num_hidden_layers", "num_single_layers", "depth",
                          "transformer_layers_per_block"})) {
        each_uint(v, [&](std::uint64_t n) { return count(n); });
        if (key == "depth" && v.is_number_unsigned()) depth_after = v.get<std::uint64_t>();
      }
    }
    // Qwen2.5-VL's full-attention layers: only those that remain.
    if (auto it = obj.find("fullatt_block_indexes");
        it != obj.end() && it->is_array() && depth_after != 0) {
      json kept = json::array();
      for (const auto& e : *it)
        if (e.is_number_unsigned() && e.get<std::uint64_t>() < depth_after) kept.push_back(e);
      *it = std::move(kept);
    }
  }
};

// The rewritten config: every size and count the readers use, scaled; everything else as it was.
std::string scale_config(const Component& before, const Component& after, const DimMap& f,
                         const ScaleDown& o) {
  json cfg;
  detail::JsonError err;
  if (before.config_json.empty() || !detail::parse_json_strict(before.config_json, cfg, err) ||
      !cfg.is_object())
    return detail::synthesize_config(after);
  ConfigScaler scaler{f, o, before.arch, after.arch, false};
  scaler.unet = before.role == Role::denoiser && cfg.contains("block_out_channels");
  scaler.scale(cfg);
  // A reader that finds no head size takes the family's published one (Qwen2.5-VL and CLIP have
  // none in config.json): say it.
  if (before.role == Role::text_encoder && after.arch.head_dim != 0) {
    json& t = cfg.contains("text_config") && cfg["text_config"].is_object() &&
                      cfg["text_config"].contains("hidden_size")
                  ? cfg["text_config"]
                  : cfg;
    if (!t.contains("head_dim") && !t.contains("d_kv") && !t.contains("attention_head_dim"))
      t["head_dim"] = after.arch.head_dim;
  }
  return detail::dump_json(cfg, 2);
}

}  // namespace

Result<Model> scale_down(const Model& model, const ScaleDown& options) noexcept {
  const double f = options.factor;
  if (!(f >= 1.0 && f <= kScaleDownMaxFactor)) {  // also rejects NaN
    std::string message = "scale-down factor ";
    message.append(std::to_string(f)).append(" is out of range");
    return Status(Errc::invalid_argument, std::move(message))
        .with_rule("synthetic.factor")
        .with_hint("give a factor from 1 (unchanged) to 1e6; 16 makes catalog models 5-300 MB");
  }
  DimMap dims(f);
  for (const auto& c : model.components) {
    dims.pin(c.arch.in_channels);
    dims.pin(c.arch.latent_channels);
    for (const auto& t : c.tensors) {
      const DTypeInfo& info = dtype_info(t.dtype);
      if (!t.shape.empty()) dims.require_multiple(t.shape.back(), info.block_elems);
    }
  }

  Model out;
  out.name = model.name;
  out.source = "synthetic";
  out.pipeline_class = model.pipeline_class;
  out.components.reserve(model.components.size());
  for (const auto& c : model.components) {
    const Selection sel = select_tensors(c, options);
    Component s;
    s.name = c.name;
    s.role = c.role;
    s.class_name = c.class_name;
    s.arch = scale_arch(c.arch, dims, scaled_layers(c.arch.layers, sel.cuts, options));
    for (std::size_t t = 0; t < c.tensors.size(); ++t) {
      if (!sel.keep[t]) continue;
      TensorInfo ti;
      ti.name = c.tensors[t].name;
      ti.dtype = c.tensors[t].dtype;
      ti.shape.reserve(c.tensors[t].shape.size());
      for (auto d : c.tensors[t].shape) ti.shape.push_back(dims(d));
      const auto bytes = dtype_bytes(ti.dtype, ti.elements());
      if (!bytes) {
        std::string message = "the scaled shape is not a whole number of ";
        message.append(dtype_name(ti.dtype)).append(" blocks");
        return Status(Errc::internal, std::move(message))
            .with_tensor(ti.name)
            .with_rule("synthetic.shape");
      }
      ti.nbytes = *bytes;
      ti.file = kNoFile;
      ti.offset = 0;
      s.tensors.push_back(std::move(ti));
    }
    s.config_json = scale_config(c, s, dims, options);
    out.components.push_back(std::move(s));
  }
  return out;
}

}  // namespace v1
}  // namespace dmem
