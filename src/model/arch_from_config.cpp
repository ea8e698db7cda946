// Role, family and ArchInfo of a component from its class, config.json and tensor shapes.
// Config keys and tensor names: FORMATS.md §6; family names match the catalog's generators.
#include "model/arch_from_config.hpp"

#include <cstdint>
#include <limits>
#include <set>
#include <unordered_map>
#include <vector>

namespace dmem::detail {

namespace {

using nlohmann::json;

bool starts_with(std::string_view s, std::string_view p) noexcept {
  return s.substr(0, p.size()) == p;
}
bool ends_with(std::string_view s, std::string_view p) noexcept {
  return s.size() >= p.size() && s.substr(s.size() - p.size()) == p;
}

std::uint32_t to_u32(std::uint64_t v) noexcept {
  return v > std::numeric_limits<std::uint32_t>::max() ? 0 : static_cast<std::uint32_t>(v);
}

// A non-negative integer that fits in 32 bits; anything else reads as "absent".
bool json_u32(const json& j, std::uint32_t& out) noexcept {
  std::uint64_t v = 0;
  if (j.is_number_unsigned()) {
    v = j.get<std::uint64_t>();
  } else if (j.is_number_integer()) {
    const auto s = j.get<std::int64_t>();
    if (s < 0) return false;
    v = static_cast<std::uint64_t>(s);
  } else {
    return false;
  }
  if (v > std::numeric_limits<std::uint32_t>::max()) return false;
  out = static_cast<std::uint32_t>(v);
  return true;
}

const json* member(const json& obj, const char* key) noexcept {
  if (!obj.is_object()) return nullptr;
  auto it = obj.find(key);
  return it == obj.end() ? nullptr : &*it;
}

// First of `keys` present as an integer in `obj`, else 0.
std::uint32_t get_u32(const json& obj, std::initializer_list<const char*> keys) noexcept {
  for (const char* k : keys) {
    std::uint32_t v = 0;
    if (const json* j = member(obj, k); j != nullptr && json_u32(*j, v)) return v;
  }
  return 0;
}

std::vector<std::uint32_t> get_u32_list(const json& obj, const char* key) {
  std::vector<std::uint32_t> out;
  const json* j = member(obj, key);
  if (j == nullptr || !j->is_array()) return out;
  for (const auto& e : *j) {
    std::uint32_t v = 0;
    if (!json_u32(e, v)) return {};
    out.push_back(v);
  }
  return out;
}

void set_if_zero(std::uint32_t& field, std::uint32_t value) noexcept {
  if (field == 0) field = value;
}

std::uint32_t pow2(std::size_t n) noexcept {
  return n >= 31 ? 0 : (1u << n);
}

std::string family_from_class(std::string_view cls, const json* config) {
  if (cls == "QwenImageTransformer2DModel") return "qwen-image-dit";
  if (cls == "FluxTransformer2DModel") return "flux-dit";
  if (cls == "SD3Transformer2DModel") return "sd3-dit";
  if (cls == "WanTransformer3DModel") return "wan-dit";
  if (cls == "Qwen2_5_VLForConditionalGeneration") return "qwen2.5-vl";
  if (cls == "T5EncoderModel") return "t5";
  if (cls == "UMT5EncoderModel") return "umt5";
  if (starts_with(cls, "CLIPTextModel")) return "clip";
  if (cls == "AutoencoderKL") return "vae-kl";
  if (cls == "AutoencoderKLWan" || cls == "AutoencoderKLQwenImage") return "vae-wan";
  if (cls == "UNet2DConditionModel" && config != nullptr) {
    // SDXL is the UNet with the "text_time" added conditioning (SD 1.x/2.x have none).
    const json* add = member(*config, "addition_embed_type");
    if (add != nullptr && add->is_string() && add->get_ref<const std::string&>() == "text_time")
      return "sdxl-unet";
  }
  return {};
}

// ---- config.json -----------------------------------------------------------------------------

// UNet2DConditionModel: transformer blocks per level (int or list), as diffusers expands it.
std::vector<std::uint32_t> per_level(const json& cfg, const char* key, std::size_t levels,
                                     std::uint32_t fallback) {
  std::vector<std::uint32_t> out = get_u32_list(cfg, key);
  if (out.size() == levels) return out;
  std::uint32_t v = fallback;
  if (const json* j = member(cfg, key); j == nullptr || !json_u32(*j, v)) v = fallback;
  return std::vector<std::uint32_t>(levels, v);
}

std::vector<std::string> string_list(const json& cfg, const char* key) {
  std::vector<std::string> out;
  const json* j = member(cfg, key);
  if (j == nullptr || !j->is_array()) return out;
  for (const auto& e : *j) out.push_back(e.is_string() ? e.get<std::string>() : std::string());
  return out;
}

void unet_from_config(const json& cfg, ArchInfo& a) {
  const std::vector<std::uint32_t> channels = get_u32_list(cfg, "block_out_channels");
  if (channels.empty()) return;
  const std::size_t levels = channels.size();
  set_if_zero(a.hidden, channels.back());
  // attention_head_dim of UNet2DConditionModel counts heads (diffusers' own comment calls it
  // "incorrectly named"); num_attention_heads wins when given.
  std::vector<std::uint32_t> heads = get_u32_list(cfg, "num_attention_heads");
  if (heads.empty()) heads = get_u32_list(cfg, "attention_head_dim");
  std::uint32_t h =
      heads.empty() ? get_u32(cfg, {"num_attention_heads", "attention_head_dim"}) : heads.back();
  set_if_zero(a.heads, h);
  if (a.heads != 0 && a.head_dim == 0) a.head_dim = a.hidden / a.heads;
  set_if_zero(a.ffn, 4 * a.hidden);  // GEGLU inner width
  set_if_zero(a.text_dim, get_u32(cfg, {"cross_attention_dim"}));

  // Transformer blocks: layers_per_block per cross-attention down level, +1 per up level, and
  // the mid block's, each times transformer_layers_per_block of that level.
  const std::vector<std::string> down = string_list(cfg, "down_block_types");
  const std::vector<std::string> up = string_list(cfg, "up_block_types");
  if (down.size() != levels) return;
  const std::uint32_t per_block = get_u32(cfg, {"layers_per_block"});
  const std::vector<std::uint32_t> tl = per_level(cfg, "transformer_layers_per_block", levels, 1);
  std::uint64_t blocks = 0;
  for (std::size_t i = 0; i < levels; ++i)
    if (down[i].find("CrossAttn") != std::string::npos) blocks += std::uint64_t{per_block} * tl[i];
  if (up.size() == levels) {
    for (std::size_t i = 0; i < levels; ++i)
      if (up[i].find("CrossAttn") != std::string::npos)
        blocks += std::uint64_t{per_block + 1} * tl[levels - 1 - i];
  }
  const json* mid = member(cfg, "mid_block_type");
  if (mid == nullptr || (mid->is_string() &&
                         mid->get_ref<const std::string&>().find("CrossAttn") != std::string::npos))
    blocks += tl.back();
  set_if_zero(a.layers, to_u32(blocks));
}

void vae_from_config(const json& cfg, ArchInfo& a) {
  // AutoencoderKL: one down-sampler between consecutive levels.
  const std::vector<std::uint32_t> channels = get_u32_list(cfg, "block_out_channels");
  if (!channels.empty()) {
    set_if_zero(a.hidden, channels.front());
    set_if_zero(a.layers, to_u32(channels.size()));
    set_if_zero(a.head_dim, channels.back());  // single-head mid-block attention
    set_if_zero(a.vae_scale, pow2(channels.size() - 1));
  }
  // AutoencoderKLWan / QwenImage: base_dim x dim_mult, spatial 2^len(temperal_downsample),
  // temporal 2^(true entries).
  const std::uint32_t base = get_u32(cfg, {"base_dim"});
  const std::vector<std::uint32_t> mult = get_u32_list(cfg, "dim_mult");
  if (base != 0) set_if_zero(a.hidden, base);
  if (!mult.empty()) {
    set_if_zero(a.layers, to_u32(mult.size()));
    if (base != 0) set_if_zero(a.head_dim, base * mult.back());
  }
  if (const json* td = member(cfg, "temperal_downsample"); td != nullptr && td->is_array()) {
    std::size_t down_t = 0;
    for (const auto& e : *td) down_t += (e.is_boolean() && e.get<bool>()) ? 1 : 0;
    set_if_zero(a.vae_scale, pow2(td->size()));
    set_if_zero(a.vae_scale_t, pow2(down_t));
  }
  if (a.hidden != 0) set_if_zero(a.heads, 1);
  set_if_zero(a.in_channels, get_u32(cfg, {"in_channels", "input_channels"}));
  set_if_zero(a.latent_channels, get_u32(cfg, {"latent_channels", "z_dim"}));
}

}  // namespace

Role role_from_class(std::string_view cls) noexcept {
  if (cls.empty()) return Role::other;
  if (ends_with(cls, "Transformer2DModel") || ends_with(cls, "Transformer3DModel") ||
      starts_with(cls, "UNet"))
    return Role::denoiser;
  if (starts_with(cls, "CLIPTextModel") || cls == "T5EncoderModel" || cls == "UMT5EncoderModel" ||
      cls == "Qwen2_5_VLForConditionalGeneration" || cls == "Qwen2VLForConditionalGeneration")
    return Role::text_encoder;
  if (starts_with(cls, "Autoencoder")) return Role::vae;
  return Role::other;
}

std::string class_from_config(const json& config) {
  if (const json* c = member(config, "_class_name"); c != nullptr && c->is_string())
    return c->get<std::string>();
  if (const json* a = member(config, "architectures");
      a != nullptr && a->is_array() && !a->empty() && a->front().is_string())
    return a->front().get<std::string>();
  return {};
}

void arch_from_config(const json& cfg, Role role, ArchInfo& a) {
  if (!cfg.is_object()) return;
  if (role == Role::vae) {
    vae_from_config(cfg, a);
    return;
  }
  if (role == Role::denoiser && member(cfg, "block_out_channels") != nullptr) {
    unet_from_config(cfg, a);
    set_if_zero(a.in_channels, get_u32(cfg, {"in_channels"}));
    set_if_zero(a.latent_channels, get_u32(cfg, {"out_channels"}));
    set_if_zero(a.patch, 1);
    return;
  }
  // Newer transformers nest the language model's keys under text_config.
  const json* text = member(cfg, "text_config");
  const json& t = (text != nullptr && text->is_object() && member(*text, "hidden_size") != nullptr)
                      ? *text
                      : cfg;

  set_if_zero(a.heads, get_u32(t, {"num_attention_heads", "num_heads", "n_head"}));
  set_if_zero(a.head_dim, get_u32(t, {"attention_head_dim", "head_dim", "d_kv"}));
  set_if_zero(a.hidden, get_u32(t, {"hidden_size", "d_model"}));
  const std::uint32_t layers = get_u32(t, {"num_hidden_layers", "num_layers"});
  set_if_zero(a.layers, layers + get_u32(t, {"num_single_layers"}));  // FLUX: double + single
  set_if_zero(a.ffn, get_u32(t, {"intermediate_size", "d_ff", "ffn_dim"}));
  set_if_zero(a.vocab, get_u32(t, {"vocab_size"}));
  set_if_zero(a.text_dim, get_u32(cfg, {"joint_attention_dim", "text_dim"}));
  set_if_zero(a.in_channels, get_u32(cfg, {"in_channels"}));

  if (const json* p = member(cfg, "patch_size"); p != nullptr) {
    std::uint32_t v = 0;
    const std::vector<std::uint32_t> list = get_u32_list(cfg, "patch_size");
    if (json_u32(*p, v)) {
      set_if_zero(a.patch, v);
    } else if (list.size() == 3) {  // Wan: [t, h, w]
      a.patch_t = list[0];
      set_if_zero(a.patch, list[1]);
    } else if (list.size() == 2) {
      set_if_zero(a.patch, list[0]);
    }
  }
  if (role == Role::denoiser) set_if_zero(a.latent_channels, get_u32(cfg, {"out_channels"}));

  if (a.family == "flux-dit") {
    // The FLUX pipeline packs 2x2 latent pixels into one 64-channel token before patch_size 1.
    a.patch = (a.patch == 0 ? 1 : a.patch) * 2;
    if (a.latent_channels == 0 && a.in_channels != 0) a.latent_channels = a.in_channels / 4;
    // Without a guidance embedder it is FLUX.1 [schnell], whose pipeline uses 256 T5 tokens.
    const json* g = member(cfg, "guidance_embeds");
    if (g != nullptr && g->is_boolean() && !g->get<bool>()) set_if_zero(a.max_text_tokens, 256);
  }
  if (a.family == "qwen2.5-vl") {
    // The catalog's convention: the vision tower's patch and input channels.
    if (const json* v = member(cfg, "vision_config"); v != nullptr && v->is_object()) {
      set_if_zero(a.patch, get_u32(*v, {"patch_size"}));
      const std::uint32_t pt = get_u32(*v, {"temporal_patch_size"});
      if (pt != 0) a.patch_t = pt;
      set_if_zero(a.in_channels, get_u32(*v, {"in_chans", "in_channels"}));
    }
  }
  if (a.family == "clip") set_if_zero(a.max_text_tokens, get_u32(t, {"max_position_embeddings"}));
  if (role == Role::text_encoder) set_if_zero(a.text_dim, a.hidden);
}

// ---- tensor names
// --------------------------------------------------------------------------------

namespace {

class TensorIndex {
 public:
  explicit TensorIndex(const std::vector<TensorInfo>& tensors) : tensors_(tensors) {
    by_name_.reserve(tensors.size());
    for (const auto& t : tensors) by_name_.emplace(t.name, &t);
  }

  [[nodiscard]] const TensorInfo* find(std::string_view name) const {
    auto it = by_name_.find(name);
    return it == by_name_.end() ? nullptr : it->second;
  }
  [[nodiscard]] bool has(std::string_view name) const { return find(name) != nullptr; }
  /// Dimension `i` of tensor `name`, 0 when absent.
  [[nodiscard]] std::uint32_t dim(std::string_view name, std::size_t i) const {
    const TensorInfo* t = find(name);
    return (t == nullptr || i >= t->shape.size()) ? 0 : to_u32(t->shape[i]);
  }
  [[nodiscard]] std::size_t rank(std::string_view name) const {
    const TensorInfo* t = find(name);
    return t == nullptr ? 0 : t->shape.size();
  }
  [[nodiscard]] bool any_prefix(std::string_view prefix) const {
    for (const auto& t : tensors_)
      if (starts_with(t.name, prefix)) return true;
    return false;
  }
  [[nodiscard]] bool any_contains(std::string_view part) const {
    for (const auto& t : tensors_)
      if (t.name.find(part) != std::string::npos) return true;
    return false;
  }
  /// Distinct N in "prefix.N." names: the number of numbered children of `prefix`.
  [[nodiscard]] std::uint32_t count_children(std::string_view prefix) const {
    std::set<std::string_view> seen;
    for (const auto& t : tensors_) {
      std::string_view n = t.name;
      if (n.size() <= prefix.size() + 1 || !starts_with(n, prefix) || n[prefix.size()] != '.')
        continue;
      n.remove_prefix(prefix.size() + 1);
      const auto dot = n.find('.');
      const std::string_view idx = n.substr(0, dot);
      if (!idx.empty() && idx.find_first_not_of("0123456789") == std::string_view::npos)
        seen.insert(idx);
    }
    return to_u32(seen.size());
  }
  [[nodiscard]] std::uint32_t count_suffix(std::string_view suffix) const {
    std::uint64_t n = 0;
    for (const auto& t : tensors_) n += ends_with(t.name, suffix) ? 1 : 0;
    return to_u32(n);
  }
  /// Dimension `i` of the first tensor whose name ends with `suffix`.
  [[nodiscard]] std::uint32_t first_dim_with_suffix(std::string_view suffix, std::size_t i) const {
    for (const auto& t : tensors_)
      if (ends_with(t.name, suffix) && i < t.shape.size()) return to_u32(t.shape[i]);
    return 0;
  }

 private:
  const std::vector<TensorInfo>& tensors_;
  std::unordered_map<std::string_view, const TensorInfo*> by_name_;
};

struct Guess {
  Role role = Role::other;
  ArchInfo arch;
};

std::uint32_t div_or_zero(std::uint32_t a, std::uint32_t b) noexcept {
  return b == 0 ? 0 : a / b;
}

bool guess_denoiser(const TensorIndex& ix, Guess& g) {
  ArchInfo& a = g.arch;
  if (ix.any_prefix("double_blocks.") && ix.any_prefix("single_blocks.")) {
    // FLUX, BFL names; [schnell] has no guidance embedder and 256 prompt tokens.
    a.family = "flux-dit";
    if (!ix.any_prefix("guidance_in.")) a.max_text_tokens = 256;
    a.layers = ix.count_children("double_blocks") + ix.count_children("single_blocks");
    a.hidden = ix.dim("img_in.weight", 0);
    a.in_channels = ix.dim("img_in.weight", 1);
    a.text_dim = ix.dim("txt_in.weight", 1);
    a.head_dim = ix.dim("double_blocks.0.img_attn.norm.query_norm.scale", 0);
    a.ffn = ix.dim("double_blocks.0.img_mlp.0.weight", 0);
  } else if (ix.any_prefix("single_transformer_blocks.") && ix.any_prefix("transformer_blocks.")) {
    // FLUX, diffusers names.
    a.family = "flux-dit";
    if (!ix.any_prefix("time_text_embed.guidance_embedder.")) a.max_text_tokens = 256;
    a.layers =
        ix.count_children("transformer_blocks") + ix.count_children("single_transformer_blocks");
    a.hidden = ix.dim("x_embedder.weight", 0);
    a.in_channels = ix.dim("x_embedder.weight", 1);
    a.text_dim = ix.dim("context_embedder.weight", 1);
    a.head_dim = ix.dim("transformer_blocks.0.attn.norm_q.weight", 0);
    a.ffn = ix.dim("transformer_blocks.0.ff.net.0.proj.weight", 0);
  } else if (ix.any_prefix("transformer_blocks.0.img_mod.")) {
    a.family = "qwen-image-dit";
    a.layers = ix.count_children("transformer_blocks");
    a.hidden = ix.dim("img_in.weight", 0);
    a.in_channels = ix.dim("img_in.weight", 1);
    a.text_dim = ix.dim("txt_in.weight", 1);
    a.head_dim = ix.dim("transformer_blocks.0.attn.norm_q.weight", 0);
    a.ffn = ix.dim("transformer_blocks.0.img_mlp.net.0.proj.weight", 0);
  } else if (ix.any_prefix("joint_blocks.")) {
    // SD3, SAI names.
    a.family = "sd3-dit";
    a.layers = ix.count_children("joint_blocks");
    a.hidden = ix.dim("x_embedder.proj.weight", 0);
    a.in_channels = ix.dim("x_embedder.proj.weight", 1);
    a.patch = ix.dim("x_embedder.proj.weight", 2);
    a.text_dim = ix.dim("context_embedder.weight", 1);
    a.head_dim = ix.dim("joint_blocks.0.x_block.attn.ln_q.weight", 0);
    a.ffn = ix.dim("joint_blocks.0.x_block.mlp.fc1.weight", 0);
  } else if (ix.any_prefix("transformer_blocks.") && ix.has("pos_embed.proj.weight") &&
             ix.has("context_embedder.weight")) {
    // SD3, diffusers names.
    a.family = "sd3-dit";
    a.layers = ix.count_children("transformer_blocks");
    a.hidden = ix.dim("pos_embed.proj.weight", 0);
    a.in_channels = ix.dim("pos_embed.proj.weight", 1);
    a.patch = ix.dim("pos_embed.proj.weight", 2);
    a.text_dim = ix.dim("context_embedder.weight", 1);
    a.head_dim = ix.dim("transformer_blocks.0.attn.norm_q.weight", 0);
    a.ffn = ix.dim("transformer_blocks.0.ff.net.0.proj.weight", 0);
  } else if (ix.any_prefix("blocks.") && ix.rank("patch_embedding.weight") == 5) {
    // Wan, original and diffusers names share blocks.N and the Conv3d patch embedding.
    a.family = "wan-dit";
    a.layers = ix.count_children("blocks");
    a.hidden = ix.dim("patch_embedding.weight", 0);
    a.in_channels = ix.dim("patch_embedding.weight", 1);
    a.patch_t = ix.dim("patch_embedding.weight", 2);
    a.patch = ix.dim("patch_embedding.weight", 3);
    a.text_dim = ix.dim("text_embedding.0.weight", 1);
    if (a.text_dim == 0) a.text_dim = ix.dim("condition_embedder.text_embedder.linear_1.weight", 1);
    a.ffn = ix.dim("blocks.0.ffn.0.weight", 0);
    if (a.ffn == 0) a.ffn = ix.dim("blocks.0.ffn.net.0.proj.weight", 0);
    a.head_dim = 128;  // every released Wan 2.x DiT (1.3B: 1536/12, 14B: 5120/40)
  } else if (ix.any_prefix("input_blocks.") && ix.any_prefix("middle_block.")) {
    // SD / SDXL UNet, LDM names; label_emb is SDXL's "text_time" added conditioning.
    if (ix.any_prefix("label_emb.")) a.family = "sdxl-unet";
    a.hidden = ix.dim("middle_block.0.in_layers.2.weight", 0);
    a.in_channels = ix.dim("input_blocks.0.0.weight", 1);
    a.layers = ix.count_suffix(".attn1.to_q.weight");
    a.text_dim = ix.first_dim_with_suffix(".attn2.to_k.weight", 1);
    a.head_dim = 64;
  } else if (ix.any_prefix("down_blocks.") && ix.any_prefix("mid_block.") &&
             ix.any_prefix("time_embedding.")) {
    // UNet2DConditionModel, diffusers names.
    if (ix.any_prefix("add_embedding.")) a.family = "sdxl-unet";
    a.hidden = ix.dim("mid_block.resnets.0.conv1.weight", 0);
    a.in_channels = ix.dim("conv_in.weight", 1);
    a.layers = ix.count_suffix(".attn1.to_q.weight");
    a.text_dim = ix.first_dim_with_suffix(".attn2.to_k.weight", 1);
    a.head_dim = 64;
  } else {
    return false;
  }
  g.role = Role::denoiser;
  if (a.heads == 0) a.heads = div_or_zero(a.hidden, a.head_dim);
  return true;
}

bool guess_text_encoder(const TensorIndex& ix, Guess& g) {
  ArchInfo& a = g.arch;
  if (ix.any_prefix("encoder.block.") &&
      (ix.has("shared.weight") || ix.has("encoder.embed_tokens.weight"))) {
    // T5 / UMT5 encoder: UMT5 has a relative attention bias in every block, T5 in block 0 only.
    const char* emb = ix.has("shared.weight") ? "shared.weight" : "encoder.embed_tokens.weight";
    a.family = ix.any_prefix("encoder.block.1.layer.0.SelfAttention.relative_attention_bias.")
                   ? "umt5"
                   : "t5";
    a.vocab = ix.dim(emb, 0);
    a.hidden = ix.dim(emb, 1);
    a.layers = ix.count_children("encoder.block");
    a.heads = ix.dim("encoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight", 1);
    a.head_dim = div_or_zero(ix.dim("encoder.block.0.layer.0.SelfAttention.q.weight", 0), a.heads);
    a.ffn = ix.dim("encoder.block.0.layer.1.DenseReluDense.wi_0.weight", 0);
    if (a.ffn == 0) a.ffn = ix.dim("encoder.block.0.layer.1.DenseReluDense.wi.weight", 0);
  } else if (ix.any_prefix("text_model.encoder.layers.")) {
    // CLIP text model, transformers names.
    a.family = "clip";
    a.vocab = ix.dim("text_model.embeddings.token_embedding.weight", 0);
    a.hidden = ix.dim("text_model.embeddings.token_embedding.weight", 1);
    a.max_text_tokens = ix.dim("text_model.embeddings.position_embedding.weight", 0);
    a.layers = ix.count_children("text_model.encoder.layers");
    a.ffn = ix.dim("text_model.encoder.layers.0.mlp.fc1.weight", 0);
    a.head_dim = 64;
  } else if (ix.any_prefix("transformer.resblocks.") && ix.has("token_embedding.weight")) {
    // CLIP text model, OpenCLIP names (SDXL / SD2 checkpoints).
    a.family = "clip";
    a.vocab = ix.dim("token_embedding.weight", 0);
    a.hidden = ix.dim("token_embedding.weight", 1);
    a.max_text_tokens = ix.dim("positional_embedding", 0);
    a.layers = ix.count_children("transformer.resblocks");
    a.ffn = ix.dim("transformer.resblocks.0.mlp.c_fc.weight", 0);
    a.head_dim = 64;
  } else if (ix.any_prefix("model.layers.") || ix.any_prefix("model.language_model.layers.")) {
    // A decoder-only language model; Qwen2.5-VL when it carries its vision tower.
    const bool nested = ix.any_prefix("model.language_model.layers.");
    const std::string base = nested ? "model.language_model" : "model";
    if (ix.any_prefix("visual.") || ix.any_prefix("model.visual.")) a.family = "qwen2.5-vl";
    a.vocab = ix.dim(base + ".embed_tokens.weight", 0);
    a.hidden = ix.dim(base + ".embed_tokens.weight", 1);
    a.layers = ix.count_children(base + ".layers");
    a.ffn = ix.dim(base + ".layers.0.mlp.gate_proj.weight", 0);
    if (a.family == "qwen2.5-vl") {
      a.head_dim = 128;  // every Qwen2.5-VL size (3B 2048/16, 7B 3584/28, 72B 8192/64)
      // The catalog's convention: the vision tower's Conv3d patch embedding [D, C, t, p, p].
      const char* pe = ix.has("visual.patch_embed.proj.weight")
                           ? "visual.patch_embed.proj.weight"
                           : "model.visual.patch_embed.proj.weight";
      a.in_channels = ix.dim(pe, 1);
      a.patch_t = ix.dim(pe, 2);
      a.patch = ix.dim(pe, 3);
    }
  } else {
    return false;
  }
  g.role = Role::text_encoder;
  if (a.heads == 0) a.heads = div_or_zero(a.hidden, a.head_dim);
  a.text_dim = a.hidden;
  return true;
}

bool guess_vae(const TensorIndex& ix, Guess& g) {
  if (!ix.any_prefix("encoder.") && !ix.any_prefix("decoder.")) return false;
  ArchInfo& a = g.arch;
  if (ix.any_prefix("encoder.downsamples.") || ix.any_prefix("decoder.upsamples.") ||
      ix.rank("encoder.conv_in.weight") == 5 || ix.rank("decoder.conv_in.weight") == 5) {
    // Causal 3-D VAE (Wan 2.1, Qwen-Image): original names use conv1/downsamples.
    a.family = "vae-wan";
    const char* conv_in =
        ix.has("encoder.conv1.weight") ? "encoder.conv1.weight" : "encoder.conv_in.weight";
    const char* dec_in =
        ix.has("decoder.conv1.weight") ? "decoder.conv1.weight" : "decoder.conv_in.weight";
    a.hidden = ix.dim(conv_in, 0);
    a.in_channels = ix.dim(conv_in, 1);
    a.latent_channels = ix.dim(dec_in, 1);
    a.head_dim = ix.dim(dec_in, 0);  // the deepest level's width (single-head mid attention)
    a.layers = ix.count_children("decoder.up_blocks");  // diffusers: one per level
  } else if (ix.any_prefix("encoder.down.") || ix.any_prefix("encoder.down_blocks.")) {
    // AutoencoderKL, LDM ("down.N") or diffusers ("down_blocks.N") names.
    a.family = "vae-kl";
    a.hidden = ix.dim("encoder.conv_in.weight", 0);
    a.in_channels = ix.dim("encoder.conv_in.weight", 1);
    a.latent_channels = ix.dim("decoder.conv_in.weight", 1);
    a.head_dim = ix.dim("decoder.conv_in.weight", 0);
    a.layers =
        ix.count_children(ix.any_prefix("encoder.down.") ? "encoder.down" : "encoder.down_blocks");
    if (a.layers != 0) a.vae_scale = pow2(a.layers - 1);
  } else {
    return false;
  }
  g.role = Role::vae;
  return true;
}

Guess guess_from_tensors(const std::vector<TensorInfo>& tensors) {
  const TensorIndex ix(tensors);
  Guess g;
  // Text encoders first: a T5 encoder has "encoder." names a VAE would also match.
  if (!guess_text_encoder(ix, g) && !guess_denoiser(ix, g)) guess_vae(ix, g);
  return g;
}

void merge_arch(ArchInfo& a, const ArchInfo& b) {
  if (a.family.empty()) a.family = b.family;
  set_if_zero(a.hidden, b.hidden);
  set_if_zero(a.layers, b.layers);
  set_if_zero(a.heads, b.heads);
  set_if_zero(a.head_dim, b.head_dim);
  set_if_zero(a.ffn, b.ffn);
  set_if_zero(a.patch, b.patch);
  if (a.patch_t <= 1 && b.patch_t > 1) a.patch_t = b.patch_t;
  set_if_zero(a.in_channels, b.in_channels);
  set_if_zero(a.latent_channels, b.latent_channels);
  set_if_zero(a.vae_scale, b.vae_scale);
  set_if_zero(a.vae_scale_t, b.vae_scale_t);
  set_if_zero(a.text_dim, b.text_dim);
  set_if_zero(a.max_text_tokens, b.max_text_tokens);
  set_if_zero(a.vocab, b.vocab);
}

// What the catalog's generators assume for each family beyond the checkpoint itself: the VAE a
// denoiser works with, the patch packing and the pipeline's prompt length.
void apply_family_defaults(ArchInfo& a) {
  const std::string& f = a.family;
  if (a.hidden == 0 && a.heads != 0 && a.head_dim != 0) a.hidden = a.heads * a.head_dim;
  if (a.head_dim == 0 && a.heads != 0) a.head_dim = a.hidden / a.heads;
  if (a.heads == 0 && a.head_dim != 0) a.heads = a.hidden / a.head_dim;
  if (f == "qwen-image-dit" || f == "flux-dit" || f == "sd3-dit") set_if_zero(a.ffn, 4 * a.hidden);
  if (f == "qwen-image-dit") {
    set_if_zero(a.patch, 2);
    set_if_zero(a.latent_channels, 16);
    set_if_zero(a.vae_scale, 8);
    set_if_zero(a.vae_scale_t, 4);
    set_if_zero(a.max_text_tokens, 512);
  } else if (f == "flux-dit") {
    set_if_zero(a.patch, 2);
    set_if_zero(a.latent_channels, 16);
    set_if_zero(a.vae_scale, 8);
    set_if_zero(a.max_text_tokens, 512);
  } else if (f == "sd3-dit") {
    set_if_zero(a.patch, 2);
    set_if_zero(a.latent_channels, 16);
    set_if_zero(a.vae_scale, 8);
    set_if_zero(a.max_text_tokens, 333);  // 77 CLIP + 256 T5 tokens
  } else if (f == "wan-dit") {
    set_if_zero(a.latent_channels, 16);
    set_if_zero(a.vae_scale, 8);
    set_if_zero(a.vae_scale_t, 4);
    set_if_zero(a.max_text_tokens, 512);
  } else if (f == "sdxl-unet") {
    set_if_zero(a.patch, 1);
    set_if_zero(a.latent_channels, 4);
    set_if_zero(a.vae_scale, 8);
    set_if_zero(a.max_text_tokens, 77);
    set_if_zero(a.ffn, 4 * a.hidden);
  } else if (f == "clip") {
    set_if_zero(a.max_text_tokens, 77);
  } else if (f == "t5" || f == "umt5" || f == "qwen2.5-vl") {
    set_if_zero(a.max_text_tokens, 512);
  } else if (f == "vae-kl") {
    set_if_zero(a.vae_scale, 8);
    set_if_zero(a.heads, 1);
  } else if (f == "vae-wan") {
    set_if_zero(a.vae_scale, 8);
    set_if_zero(a.vae_scale_t, 4);
    set_if_zero(a.heads, 1);
  }
}

}  // namespace

void complete_component(Component& c, const json* config, bool guess_role) {
  if (c.role == Role::other) c.role = role_from_class(c.class_name);
  if (c.arch.family.empty()) c.arch.family = family_from_class(c.class_name, config);
  if (config != nullptr) arch_from_config(*config, c.role, c.arch);

  Guess g = guess_from_tensors(c.tensors);
  if (c.role == Role::other && guess_role && c.class_name.empty()) c.role = g.role;
  // Shapes only describe the component when they describe the same kind of model; when the
  // class names another family, trust the class.
  const bool conflict =
      !c.arch.family.empty() && !g.arch.family.empty() && c.arch.family != g.arch.family;
  if (g.role == c.role && c.role != Role::other && !conflict) merge_arch(c.arch, g.arch);
  apply_family_defaults(c.arch);
}

}  // namespace dmem::detail
