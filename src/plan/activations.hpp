// Internal: the activation model. How many tokens each component sees for a workload and how
// much memory its forward pass holds at its peak (docs/planner.md, "Activations").
#pragma once

#include <cstdint>

#include "dmem/model.hpp"
#include "dmem/plan.hpp"

namespace dmem::detail {

/// How the pipeline drives its denoiser per step (classifier-free guidance).
struct GuidanceShape {
  std::uint32_t passes = 1;  ///< forward passes per step run one after the other
  std::uint32_t batch = 1;   ///< batch multiplier inside one pass (batched CFG)
};

/// Qwen-Image and Wan run cond and uncond as two passes; SD3 and SDXL batch them; FLUX is
/// guidance-distilled (one pass).
[[nodiscard]] GuidanceShape guidance_shape(const ArchInfo& denoiser) noexcept;
/// The workload's choice (--cfg): the pipeline's own for Guidance::model_default.
[[nodiscard]] GuidanceShape guidance_shape(const ArchInfo& denoiser, Guidance cfg) noexcept;

/// Tokens a denoiser sees in one pass (batch excluded).
struct DenoiserTokens {
  std::uint64_t image = 0;  ///< latent patches (x2 for edit pipelines: the reference image)
  std::uint64_t text = 0;   ///< text tokens in the sequence (joint attention) or attended to
  std::uint64_t total = 0;  ///< sequence length of self-attention
  bool joint = true;        ///< text tokens share the self-attention sequence (MMDiT)
};
[[nodiscard]] DenoiserTokens denoiser_tokens(const ArchInfo& arch, const Workload& wl,
                                             bool edit) noexcept;

/// Latent pixels (h*w) and latent frames of the workload for a VAE with this scale.
struct LatentSize {
  std::uint64_t h = 0, w = 0, frames = 1;
};
[[nodiscard]] LatentSize latent_size(const ArchInfo& arch, const Workload& wl) noexcept;

/// Text tokens one text-encoder call processes (vision tokens of the reference image included
/// for edit pipelines with a vision-language encoder).
[[nodiscard]] std::uint64_t text_encoder_tokens(const ArchInfo& arch, bool edit) noexcept;
/// Vision tokens a vision-language encoder sees for an edit pipeline's reference image.
[[nodiscard]] std::uint64_t vision_tokens(const ArchInfo& arch, const Workload& wl,
                                          bool edit) noexcept;

/// Peak activation bytes of one component's forward pass in `phase` (before any override).
/// `denoiser` gives the tokens the pipeline feeds (for VAEs and text encoders it may be null).
struct ActivationInput {
  const Component* component = nullptr;
  const ArchInfo* denoiser = nullptr;
  Phase phase = Phase::denoise;
  bool edit = false;
  bool vae_tiling = false;
  bool vae_slicing = false;
  std::uint32_t compute_bytes = 2;  ///< bytes per element of the compute dtype
};
[[nodiscard]] std::uint64_t activation_bytes(const ActivationInput& in,
                                             const Workload& wl) noexcept;

/// The multiples the model uses (documented in docs/planner.md; exposed for --explain).
inline constexpr std::uint32_t kDitHiddenLive = 8;  ///< T x D tensors live at a DiT block's peak
inline constexpr std::uint32_t kDitFfnLive = 2;     ///< T x ffn tensors live in its MLP
inline constexpr std::uint32_t kTeHiddenLive = 8;   ///< T x D tensors live in an encoder layer
inline constexpr std::uint32_t kVaeLivePerChannel = 9;         ///< base-channel multiples per pixel
inline constexpr std::uint64_t kPhaseMiscBytes = 64ull << 20;  ///< latents, embeddings, RoPE tables

}  // namespace dmem::detail
