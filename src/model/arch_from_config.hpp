// Internal: what a component is (role, catalog family, ArchInfo), inferred from its class name,
// its config.json and, where those are missing or silent, from its tensor names and shapes.
#pragma once

#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "dmem/model.hpp"

namespace dmem::detail {

/// Role of a diffusers / transformers class: *Transformer2DModel, *Transformer3DModel, UNet*
/// -> denoiser; CLIPTextModel*, T5EncoderModel, UMT5EncoderModel, Qwen2(_5)VL* -> text encoder;
/// Autoencoder* -> vae; anything else (or empty) -> other.
[[nodiscard]] Role role_from_class(std::string_view class_name) noexcept;

/// The class a config names: diffusers `_class_name`, else transformers `architectures[0]`;
/// empty when neither is a string.
[[nodiscard]] std::string class_from_config(const nlohmann::json& config);

/// Fills `arch` from the keys of a config.json that exist (zero fields stay zero when a key is
/// absent). `role` and `arch.family` (set before the call) select how ambiguous keys are read:
/// a UNet's `attention_head_dim` counts heads, a VAE's `block_out_channels` gives its scale.
void arch_from_config(const nlohmann::json& config, Role role, ArchInfo& arch);

/// Completes a component whose name, files, tensors and (when known) class_name are set:
/// role and family from the class (unless `role` was already set by the caller), ArchInfo from
/// `config` when given, then from tensor names and shapes (diffusers names or the original
/// BFL / SAI / Wan / LDM names) for every field still unknown, then the pipeline facts the
/// catalog uses for that family (VAE scale, latent channels, prompt length).
/// `guess_role`: whether tensor names may decide the role when it is still Role::other.
void complete_component(Component& component, const nlohmann::json* config, bool guess_role);

}  // namespace dmem::detail
