// The activation model: tokens from the workload and the architecture, and the bytes a forward
// pass holds at its peak. Every multiple here is explained in docs/planner.md ("Activations").
#include "plan/activations.hpp"

#include <algorithm>
#include <string_view>

namespace dmem::detail {

namespace {

std::uint64_t ceil_div(std::uint64_t a, std::uint64_t b) {
  return b == 0 ? a : (a + b - 1) / b;
}

bool is_family(const ArchInfo& a, std::string_view f) {
  return a.family == f;
}

bool is_vae(const ArchInfo& a) {
  return a.family.rfind("vae", 0) == 0;
}

bool is_text_encoder_family(const ArchInfo& a) {
  return a.family == "qwen2.5-vl" || a.family == "t5" || a.family == "umt5" || a.family == "clip";
}

// Encoders whose attention materialises the T x T score matrix (HF eager attention).
bool eager_attention(const ArchInfo& a) {
  return a.family == "t5" || a.family == "umt5" || a.family == "clip";
}

// Sample-space tile edge of a tiled VAE decode (diffusers tile_sample_min_size).
std::uint64_t vae_tile(const ArchInfo& a) {
  return is_family(a, "vae-wan") ? 256 : 512;
}

}  // namespace

GuidanceShape guidance_shape(const ArchInfo& d) noexcept {
  if (d.family == "qwen-image-dit" || d.family == "wan-dit") return {2, 1};
  if (d.family == "sd3-dit" || d.family == "sdxl-unet") return {1, 2};
  return {1, 1};
}

GuidanceShape guidance_shape(const ArchInfo& d, Guidance cfg) noexcept {
  switch (cfg) {
    case Guidance::off:
      return {1, 1};
    case Guidance::on:
      return {2, 1};
    case Guidance::batched:
      return {1, 2};
    case Guidance::model_default:
      break;
  }
  return guidance_shape(d);
}

LatentSize latent_size(const ArchInfo& a, const Workload& wl) noexcept {
  const std::uint64_t s = a.vae_scale == 0 ? 8 : a.vae_scale;
  LatentSize l;
  l.h = ceil_div(wl.height, s);
  l.w = ceil_div(wl.width, s);
  l.frames = 1;
  if (a.vae_scale_t > 0 && wl.frames > 1) l.frames = (wl.frames - 1) / a.vae_scale_t + 1;
  return l;
}

DenoiserTokens denoiser_tokens(const ArchInfo& a, const Workload& wl, bool edit) noexcept {
  const LatentSize l = latent_size(a, wl);
  const std::uint64_t p = a.patch == 0 ? 1 : a.patch;
  const std::uint64_t pt = a.patch_t == 0 ? 1 : a.patch_t;
  DenoiserTokens t;
  t.image = ceil_div(l.h, p) * ceil_div(l.w, p) * ceil_div(l.frames, pt);
  if (edit) t.image *= 2;  // the reference image's latent is concatenated to the sequence
  t.text = a.max_text_tokens;
  t.joint = !(is_family(a, "wan-dit") || is_family(a, "sdxl-unet"));
  t.total = t.joint ? t.image + t.text : t.image;
  return t;
}

std::uint64_t vision_tokens(const ArchInfo& a, const Workload& wl, bool edit) noexcept {
  if (!edit || a.family != "qwen2.5-vl") return 0;
  // The reference image is resized to about one megapixel; 14-pixel patches merged 2x2.
  const std::uint64_t area =
      std::min<std::uint64_t>(std::uint64_t{wl.width} * wl.height, 1024 * 1024);
  return area / (28 * 28);
}

std::uint64_t text_encoder_tokens(const ArchInfo& a, bool edit) noexcept {
  (void)edit;
  return a.max_text_tokens == 0 ? 77 : a.max_text_tokens;
}

std::uint64_t activation_bytes(const ActivationInput& in, const Workload& wl) noexcept {
  if (in.component == nullptr) return 0;
  const ArchInfo& a = in.component->arch;
  const std::uint64_t b = in.compute_bytes == 0 ? 2 : in.compute_bytes;
  const std::uint64_t batch = wl.batch == 0 ? 1 : wl.batch;

  if (is_vae(a)) {
    // The decoder's full-resolution stage holds ~9 base-channel maps per output pixel (the
    // upsampled input at 2x channels, the norm output and the conv outputs): 2.3 GiB allocated
    // for a 1024x1024 FLUX decode in bf16 (docs/planner.md, "Published measurements"). A causal
    // video VAE decodes one latent frame (4 output frames) at a time.
    const std::uint64_t base = a.hidden == 0 ? 128 : a.hidden;
    const std::uint64_t frames_per_chunk = (is_family(a, "vae-wan") && wl.frames > 1) ? 4 : 1;
    std::uint64_t pixels = std::uint64_t{wl.width} * wl.height;
    if (in.vae_tiling) pixels = std::min(pixels, vae_tile(a) * vae_tile(a));
    const std::uint64_t images = in.vae_slicing ? 1 : batch;
    const std::uint64_t work = kVaeLivePerChannel * base * b * pixels * frames_per_chunk * images;
    const std::uint64_t output =
        std::uint64_t{wl.width} * wl.height * 3 * b * std::max<std::uint64_t>(1, wl.frames) * batch;
    return work + output + kPhaseMiscBytes;
  }

  if (is_text_encoder_family(a) || in.component->role == Role::text_encoder) {
    const std::uint64_t t = text_encoder_tokens(a, in.edit) + vision_tokens(a, wl, in.edit);
    const std::uint64_t d = a.hidden == 0 ? 1024 : a.hidden;
    const std::uint64_t ffn_live = a.family == "clip" ? 2 : 3;  // gated MLPs hold gate, up, product
    std::uint64_t bytes = b * t * (kTeHiddenLive * d + ffn_live * a.ffn);
    if (eager_attention(a)) bytes += 2 * std::uint64_t{a.heads} * t * t * b;  // scores + bias
    bytes += std::uint64_t{a.layers + 1} * t * d * b;  // output_hidden_states keeps every layer
    if (a.family == "qwen2.5-vl") bytes += t * a.vocab * b;  // the LM head's logits
    return bytes + kPhaseMiscBytes;
  }

  // Denoisers. Flash / memory-efficient SDPA: no T x T matrix, only O(T) statistics.
  const ArchInfo& d = in.denoiser != nullptr ? *in.denoiser : a;
  const GuidanceShape g = guidance_shape(d, wl.cfg);
  const std::uint64_t bt = batch * g.batch;
  if (is_family(a, "sdxl-unet")) {
    // Highest-resolution level: latent pixels x 320 channels (hidden / 4), ~32 maps live.
    const LatentSize l = latent_size(a, wl);
    const std::uint64_t c = a.hidden == 0 ? 320 : a.hidden / 4;
    return b * bt * l.h * l.w * 32 * c + kPhaseMiscBytes;
  }
  const DenoiserTokens t = denoiser_tokens(a, wl, in.edit);
  const std::uint64_t hidden = a.hidden == 0 ? 3072 : a.hidden;
  const std::uint64_t ffn = a.ffn == 0 ? 4 * hidden : a.ffn;
  std::uint64_t bytes = b * bt * t.total * (kDitHiddenLive * hidden + kDitFfnLive * ffn);
  // Softmax statistics of flash attention (f32 log-sum-exp per head and query).
  bytes += bt * t.total * std::max<std::uint32_t>(1, a.heads) * 4;
  if (!t.joint) bytes += b * bt * t.text * 2 * hidden;  // cross-attention K and V of the text
  return bytes + kPhaseMiscBytes;
}

}  // namespace dmem::detail
