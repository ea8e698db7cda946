// Profiling a model for planning: module-tree summaries, per-tensor flags (linear weight,
// castable), the phases each component runs in, and FLOPs of one forward pass from the real
// layer shapes and the workload's token counts (docs/planner.md, "Compute").
#include <algorithm>
#include <charconv>
#include <string_view>
#include <unordered_map>

#include "plan/activations.hpp"
#include "plan/estimator.hpp"

namespace dmem::detail {

namespace {

bool has(std::string_view s, std::string_view part) {
  return s.find(part) != std::string_view::npos;
}

std::uint32_t bit(Phase p) {
  return 1u << static_cast<unsigned>(p);
}

// Index after "<key>." in a module name ("up_blocks.2.resnets" -> 2); -1 when absent.
int index_after(std::string_view name, std::string_view key) {
  auto pos = name.find(key);
  if (pos == std::string_view::npos) return -1;
  pos += key.size();
  if (pos >= name.size() || name[pos] != '.') return -1;
  ++pos;
  int v = -1;
  auto [p, ec] = std::from_chars(name.data() + pos, name.data() + name.size(), v);
  return ec == std::errc() && p != name.data() + pos ? v : -1;
}

bool ends_with(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

// transformers keeps a T5's feed-forward output projections (`_keep_in_fp32_modules = ["wo"]`)
// out of bitsandbytes quantization and loads them in fp32: 4 bytes per weight, 4 GB for T5-XXL.
bool keeps_t5_wo_in_fp32(const QuantizerCaps* caps, const ArchInfo& arch) {
  if (caps == nullptr || (arch.family != "t5" && arch.family != "umt5")) return false;
  return caps->id == "dmem.quantizer.nf4" || caps->id == "dmem.quantizer.bnb_int8";
}

// `"force_upcast": true` in a VAE's config.json (any spacing).
bool forces_upcast(std::string_view config) {
  auto pos = config.find("\"force_upcast\"");
  if (pos == std::string_view::npos) return false;
  pos = config.find(':', pos);
  if (pos == std::string_view::npos) return false;
  pos = config.find_first_not_of(" \t\r\n", pos + 1);
  return pos != std::string_view::npos && config.substr(pos, 4) == "true";
}

bool is_dit_family(std::string_view f) {
  return f == "qwen-image-dit" || f == "flux-dit" || f == "sd3-dit" || f == "wan-dit";
}

// Leaves that act on the timestep / pooled conditioning vector: one token per sample.
bool is_modulation(std::string_view leaf) {
  return has(leaf, "_mod") || has(leaf, "norm1.linear") || has(leaf, "norm1_context.linear") ||
         has(leaf, "norm.linear") || has(leaf, "norm_out.linear") || has(leaf, "time") ||
         has(leaf, "guidance") || has(leaf, "adaLN") || has(leaf, "add_embedding");
}

// Leaves of the text stream of a dual-stream DiT, or cross-attention K/V over the text.
bool is_text_stream(std::string_view leaf) {
  return has(leaf, "txt") || has(leaf, "context") || has(leaf, "add_q") || has(leaf, "add_k") ||
         has(leaf, "add_v") || has(leaf, "to_add_out") || has(leaf, "text_embedder") ||
         has(leaf, "attn2.to_k") || has(leaf, "attn2.to_v");
}

struct FlopContext {
  const ArchInfo* arch = nullptr;
  DenoiserTokens dit;
  LatentSize latent;
  std::uint64_t full_pixels = 0;
  std::uint64_t text_tokens = 0;
  std::uint64_t vision = 0;
  std::uint32_t unet_levels = 3;
  std::uint64_t out_frames = 1;
};

// Tokens (output positions) a weight of this leaf is applied to in one forward pass.
double leaf_tokens(const FlopContext& c, std::string_view leaf, bool block_dual_stream,
                   bool in_block) {
  const ArchInfo& a = *c.arch;
  const std::string_view f = a.family;
  if (is_dit_family(f)) {
    if (is_modulation(leaf)) return 1;
    if (is_text_stream(leaf)) return static_cast<double>(c.dit.text);
    if (!in_block || block_dual_stream || !c.dit.joint) return static_cast<double>(c.dit.image);
    return static_cast<double>(c.dit.total);
  }
  if (f == "sdxl-unet") {
    if (has(leaf, "time_embedding") || has(leaf, "add_embedding")) return 1;
    if (has(leaf, "attn2.to_k") || has(leaf, "attn2.to_v"))
      return static_cast<double>(c.text_tokens);
    int level = 0;
    if (int i = index_after(leaf, "down_blocks"); i >= 0)
      level = i + (has(leaf, "downsamplers") ? 1 : 0);
    else if (int u = index_after(leaf, "up_blocks"); u >= 0)
      level =
          std::max(0, static_cast<int>(c.unet_levels) - 1 - u - (has(leaf, "upsamplers") ? 1 : 0));
    else if (has(leaf, "mid_block"))
      level = static_cast<int>(c.unet_levels) - 1;
    const double px = static_cast<double>(c.latent.h * c.latent.w);
    return px / static_cast<double>(1ull << (2 * static_cast<unsigned>(level)));
  }
  if (f.rfind("vae", 0) == 0) {
    const double lat = static_cast<double>(c.latent.h * c.latent.w);
    const double full = static_cast<double>(c.full_pixels);
    const double frames = static_cast<double>(c.out_frames);
    if (leaf.rfind("decoder", 0) == 0) {
      if (int u = index_after(leaf, "up_blocks"); u >= 0) {
        const unsigned lv = static_cast<unsigned>(std::min(u + (has(leaf, "upsampl") ? 1 : 0), 3));
        return lat * static_cast<double>(1ull << (2 * lv)) * frames;
      }
      if (has(leaf, "conv_out") || has(leaf, "norm_out") || has(leaf, "head")) return full * frames;
      return lat * frames;
    }
    if (leaf.rfind("encoder", 0) == 0) return full / 16.0 * frames;  // mean over the down path
    return lat * frames;
  }
  // Text encoders.
  if (leaf.rfind("visual", 0) == 0 || has(leaf, ".visual."))
    return static_cast<double>(4 * c.vision);
  return static_cast<double>(c.text_tokens + c.vision);
}

void compute_flops(ComponentProfile& p, const ModelProfile& mp) {
  const Component& comp = *p.component;
  const ArchInfo& a = comp.arch;
  const Workload& wl = mp.workload;
  FlopContext c;
  c.arch = &a;
  c.dit = denoiser_tokens(a, wl, mp.edit);
  c.latent = latent_size(a, wl);
  c.full_pixels = std::uint64_t{wl.width} * wl.height;
  c.out_frames = std::max<std::uint32_t>(1, wl.frames);
  c.text_tokens = a.max_text_tokens != 0   ? a.max_text_tokens
                  : mp.denoiser != nullptr ? mp.denoiser->max_text_tokens
                                           : 77;
  if (a.family == "sdxl-unet") c.text_tokens = a.max_text_tokens;
  c.vision = vision_tokens(a, wl, mp.edit);
  {
    int max_up = -1;
    for (const auto& leaf : p.summary.leaves)
      max_up = std::max(max_up, index_after(leaf.name, "up_blocks"));
    if (max_up >= 0) c.unet_levels = static_cast<std::uint32_t>(max_up + 1);
  }

  // Which blocks carry a separate text stream (MMDiT double blocks).
  std::vector<bool> dual(p.summary.blocks.size(), false);
  for (const auto& leaf : p.summary.leaves)
    if (leaf.block >= 0 && is_text_stream(leaf.name) && !is_modulation(leaf.name))
      dual[static_cast<std::size_t>(leaf.block)] = true;

  double flops = 0;
  double attn = 0;
  for (std::size_t t = 0; t < comp.tensors.size(); ++t) {
    const TensorInfo& ti = comp.tensors[t];
    if (ti.shape.size() < 2) continue;
    const auto li = p.tensor_leaf[t];
    if (li < 0) continue;
    const LeafInfo& leaf = p.summary.leaves[static_cast<std::size_t>(li)];
    // A top-level parameter (Wan's `scale_shift_table`) is its own leaf and no weight.
    if (ti.name.size() <= leaf.name.size() + 1) continue;
    const std::string_view param = std::string_view(ti.name).substr(leaf.name.size() + 1);
    if (param != "weight") continue;
    if (ti.shape.size() == 2 && !leaf.linear) continue;  // embeddings are look-ups
    const bool dual_block = leaf.block >= 0 && dual[static_cast<std::size_t>(leaf.block)];
    const double tokens = leaf_tokens(c, leaf.name, dual_block, leaf.block >= 0);
    flops += 2.0 * tokens * static_cast<double>(ti.elements());
    // UNet and VAE attention: score and value products at the leaf's resolution.
    const bool unet_or_vae = a.family == "sdxl-unet" || a.family.rfind("vae", 0) == 0;
    if (unet_or_vae && (has(leaf.name, "attn1.to_q") || has(leaf.name, "to_qkv") ||
                        (a.family != "sdxl-unet" && has(leaf.name, "to_q")))) {
      const double dim =
          static_cast<double>(ti.shape.front()) / (has(leaf.name, "to_qkv") ? 3.0 : 1.0);
      attn += 4.0 * tokens * tokens * dim;
    } else if (a.family == "sdxl-unet" && has(leaf.name, "attn2.to_q")) {
      attn +=
          4.0 * tokens * static_cast<double>(c.text_tokens) * static_cast<double>(ti.shape.front());
    }
  }
  // Transformer attention: QK^T and AV, 2 * 2 * Tq * Tkv * (heads * head_dim) per layer.
  const double width =
      static_cast<double>(a.heads) * static_cast<double>(a.head_dim != 0 ? a.head_dim : 64);
  if (is_dit_family(a.family)) {
    const double ti = static_cast<double>(c.dit.image), tt = static_cast<double>(c.dit.text),
                 tot = static_cast<double>(c.dit.total);
    attn +=
        static_cast<double>(a.layers) * 4.0 * width * (c.dit.joint ? tot * tot : ti * ti + ti * tt);
  } else if (a.family == "qwen2.5-vl" || a.family == "t5" || a.family == "umt5" ||
             a.family == "clip") {
    const double tt = static_cast<double>(c.text_tokens + c.vision);
    attn += static_cast<double>(a.layers) * 4.0 * width * tt * tt;
  }
  const GuidanceShape g =
      mp.denoiser != nullptr ? guidance_shape(*mp.denoiser, wl.cfg) : GuidanceShape{};
  double batch = static_cast<double>(std::max<std::uint32_t>(1, wl.batch));
  if (comp.role == Role::denoiser) batch *= g.batch;
  if (comp.role == Role::text_encoder) batch = 1;  // prompts are encoded once, then repeated
  p.forward_flops = (flops + attn) * batch;
  p.attention_flops = attn * batch;
}

}  // namespace

const char* phase_name(Phase phase) noexcept {
  switch (phase) {
    case Phase::load:
      return "load";
    case Phase::encode:
      return "encode";
    case Phase::denoise:
      return "denoise";
    case Phase::decode:
      return "decode";
  }
  return "?";
}

ComponentProfile* ModelProfile::find(std::string_view name) noexcept {
  for (auto& c : components)
    if (c.component->name == name) return &c;
  return nullptr;
}

ModelProfile profile_model(const Model& model, const Workload& workload) {
  ModelProfile mp;
  mp.model = &model;
  mp.workload = workload;
  const std::string& pc = model.pipeline_class;
  mp.edit = has(pc, "Edit") || has(pc, "Img2Img") || has(pc, "Inpaint");
  for (const auto& c : model.components)
    if (c.role == Role::denoiser && mp.denoiser == nullptr) mp.denoiser = &c.arch;
  const GuidanceShape g =
      mp.denoiser != nullptr ? guidance_shape(*mp.denoiser, workload.cfg) : GuidanceShape{};

  mp.components.reserve(model.components.size());
  for (const auto& comp : model.components) {
    ComponentProfile p;
    p.component = &comp;
    p.summary = summarize(comp);
    std::unordered_map<std::string_view, std::int32_t> leaf_index;
    leaf_index.reserve(p.summary.leaves.size());
    for (std::size_t i = 0; i < p.summary.leaves.size(); ++i)
      leaf_index.emplace(p.summary.leaves[i].name, static_cast<std::int32_t>(i));
    p.tensor_leaf.assign(comp.tensors.size(), -1);
    p.tensor_flags.assign(comp.tensors.size(), 0);
    for (std::size_t t = 0; t < comp.tensors.size(); ++t) {
      const std::string& name = comp.tensors[t].name;
      const auto dot = name.rfind('.');
      const std::string_view module =
          dot == std::string::npos ? std::string_view(name) : std::string_view(name).substr(0, dot);
      auto it = leaf_index.find(module);
      if (it == leaf_index.end()) continue;
      p.tensor_leaf[t] = it->second;
      const LeafInfo& leaf = p.summary.leaves[static_cast<std::size_t>(it->second)];
      std::uint8_t f = 0;
      const bool is_weight =
          dot != std::string::npos && std::string_view(name).substr(dot + 1) == "weight";
      if (leaf.linear && is_weight && comp.tensors[t].shape.size() == 2) f |= kLinearWeight;
      if (leaf.castable) f |= kCastable;
      p.tensor_flags[t] = f;
    }
    switch (comp.role) {
      case Role::denoiser:
        p.phases = bit(Phase::denoise);
        p.passes = g.passes;
        break;
      case Role::text_encoder:
        p.phases = bit(Phase::encode);
        p.passes = (g.passes > 1 || g.batch > 1) ? 2 : 1;  // the negative prompt too
        break;
      case Role::vae:
        p.phases = bit(Phase::decode) | (mp.edit ? bit(Phase::encode) : 0u);
        // The SD-XL pipelines decode in fp32 when the VAE is fp16 and its config says
        // force_upcast (the SDXL VAE overflows in fp16): vae.to(float32) before decoding.
        if (pc.rfind("StableDiffusionXL", 0) == 0 && forces_upcast(comp.config_json))
          for (const auto& t : comp.tensors) p.fp32_bytes += t.elements() * 4;
        break;
      case Role::other:
        p.phases = bit(Phase::encode);
        break;
    }
    mp.components.push_back(std::move(p));
  }
  for (auto& p : mp.components) compute_flops(p, mp);
  return mp;
}

const StoredSizes& stored_sizes(ComponentProfile& p, const QuantizerCaps* caps) {
  for (const auto& s : p.stored)
    if (s.caps == caps) return s;
  StoredSizes s;
  s.caps = caps;
  s.blocks.assign(p.summary.blocks.size(), 0);
  std::vector<std::uint64_t> leaf_bytes(p.summary.leaves.size(), 0);
  const Component& comp = *p.component;
  const bool bnb_keeps_wo = keeps_t5_wo_in_fp32(caps, comp.arch);
  for (std::size_t t = 0; t < comp.tensors.size(); ++t) {
    const TensorInfo& ti = comp.tensors[t];
    std::uint64_t bytes = ti.nbytes;
    const auto li = p.tensor_leaf[t];
    if (bnb_keeps_wo && li >= 0 && (p.tensor_flags[t] & kLinearWeight) != 0 &&
        ends_with(p.summary.leaves[static_cast<std::size_t>(li)].name, ".wo")) {
      bytes = ti.elements() * 4;  // not quantized, and upcast to fp32
    } else if (caps != nullptr) {
      const bool acts = caps->is_cast ? (p.tensor_flags[t] & kCastable) != 0
                                      : (p.tensor_flags[t] & kLinearWeight) != 0;
      bytes = quantized_bytes(*caps, ti, acts);
      if (acts && bytes != ti.nbytes) {
        s.transformed_bytes_native += ti.nbytes;
        s.largest_transformed_native = std::max(s.largest_transformed_native, ti.nbytes);
        s.largest_transformed_elems = std::max(s.largest_transformed_elems, ti.elements());
      }
    }
    s.total += bytes;
    int block = -1;
    if (li >= 0) {
      leaf_bytes[static_cast<std::size_t>(li)] += bytes;
      block = p.summary.leaves[static_cast<std::size_t>(li)].block;
    }
    if (block >= 0)
      s.blocks[static_cast<std::size_t>(block)] += bytes;
    else
      s.non_block += bytes;
  }
  for (auto b : s.blocks) s.max_block = std::max(s.max_block, b);
  for (auto b : leaf_bytes) s.max_leaf = std::max(s.max_leaf, b);
  p.stored.push_back(std::move(s));
  return p.stored.back();
}

}  // namespace dmem::detail
