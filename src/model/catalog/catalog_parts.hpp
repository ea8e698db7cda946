// Internal: one generator per architecture family; catalog.cpp assembles them into pipelines.
#pragma once

#include <cstdint>
#include <string>

#include "dmem/model.hpp"

namespace dmem::detail {

// Denoisers.
[[nodiscard]] Component qwen_image_transformer(DType dtype);
[[nodiscard]] Component flux_transformer(bool guidance_embeds, std::uint32_t max_text_tokens,
                                         DType dtype);
[[nodiscard]] Component sd35_large_transformer(DType dtype);
[[nodiscard]] Component wan21_t2v_14b_transformer(DType dtype);
[[nodiscard]] Component sdxl_unet(DType dtype);

// Text encoders.
[[nodiscard]] Component qwen2_5_vl_7b(DType dtype);

enum class T5Variant : std::uint8_t { t5_v1_1_xxl, umt5_xxl };
[[nodiscard]] Component t5_encoder(T5Variant variant, std::string name,
                                   std::uint32_t max_text_tokens, DType dtype);

enum class ClipVariant : std::uint8_t {
  vit_l14,                ///< CLIPTextModel (openai/clip-vit-large-patch14)
  vit_l14_projection,     ///< CLIPTextModelWithProjection, projection_dim 768
  vit_bigg14_projection,  ///< CLIPTextModelWithProjection, projection_dim 1280
};
[[nodiscard]] Component clip_text(ClipVariant variant, std::string name, DType dtype);

// VAEs.
enum class WanVaeClass : std::uint8_t { qwen_image, wan };
[[nodiscard]] Component wan_style_vae(WanVaeClass cls, DType dtype);

enum class KlVae : std::uint8_t { sdxl, flux, sd3 };
[[nodiscard]] Component kl_vae(KlVae variant, DType dtype);

}  // namespace dmem::detail
