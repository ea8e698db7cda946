// The built-in catalog: which components each pipeline has, in which published dtype.
// Dtype choices and their sources are listed in docs/catalog.md.
#include "dmem/catalog.hpp"

#include <iterator>
#include <string_view>

#include "model/catalog/catalog_parts.hpp"

namespace dmem {
inline namespace v1 {

namespace {

using detail::ClipVariant;
using detail::KlVae;
using detail::T5Variant;
using detail::WanVaeClass;

using Builder = Model (*)();

Model qwen_image_pipeline(const char* pipeline_class) {
  Model m;
  m.pipeline_class = pipeline_class;
  // Qwen/Qwen-Image and Qwen/Qwen-Image-Edit publish every component in bf16.
  m.components.push_back(detail::qwen_image_transformer(DType::bf16));
  m.components.push_back(detail::qwen2_5_vl_7b(DType::bf16));
  m.components.push_back(detail::wan_style_vae(WanVaeClass::qwen_image, DType::bf16));
  return m;
}

Model flux_pipeline(bool dev) {
  Model m;
  m.pipeline_class = "FluxPipeline";
  const std::uint32_t t5_tokens = dev ? 512 : 256;  // pipeline max_sequence_length
  m.components.push_back(detail::flux_transformer(dev, t5_tokens, DType::bf16));
  m.components.push_back(detail::clip_text(ClipVariant::vit_l14, "text_encoder", DType::bf16));
  m.components.push_back(
      detail::t5_encoder(T5Variant::t5_v1_1_xxl, "text_encoder_2", t5_tokens, DType::bf16));
  m.components.push_back(detail::kl_vae(KlVae::flux, DType::bf16));
  return m;
}

Model build_qwen_image() {
  return qwen_image_pipeline("QwenImagePipeline");
}
Model build_qwen_image_edit() {
  return qwen_image_pipeline("QwenImageEditPipeline");
}
Model build_flux1_dev() {
  return flux_pipeline(true);
}
Model build_flux1_schnell() {
  return flux_pipeline(false);
}

Model build_sd35_large() {
  Model m;
  m.pipeline_class = "StableDiffusion3Pipeline";
  m.components.push_back(detail::sd35_large_transformer(DType::bf16));
  m.components.push_back(
      detail::clip_text(ClipVariant::vit_l14_projection, "text_encoder", DType::bf16));
  m.components.push_back(
      detail::clip_text(ClipVariant::vit_bigg14_projection, "text_encoder_2", DType::bf16));
  m.components.push_back(
      detail::t5_encoder(T5Variant::t5_v1_1_xxl, "text_encoder_3", 256, DType::bf16));
  m.components.push_back(detail::kl_vae(KlVae::sd3, DType::bf16));
  return m;
}

Model build_sdxl() {
  // The "fp16" variant files (diffusion_pytorch_model.fp16.safetensors, model.fp16.safetensors),
  // which is what `variant="fp16"` loads; the default files of the repo are fp32.
  Model m;
  m.pipeline_class = "StableDiffusionXLPipeline";
  m.components.push_back(detail::sdxl_unet(DType::f16));
  m.components.push_back(detail::clip_text(ClipVariant::vit_l14, "text_encoder", DType::f16));
  m.components.push_back(
      detail::clip_text(ClipVariant::vit_bigg14_projection, "text_encoder_2", DType::f16));
  m.components.push_back(detail::kl_vae(KlVae::sdxl, DType::f16));
  return m;
}

Model build_wan21_t2v_14b() {
  Model m;
  m.pipeline_class = "WanPipeline";
  // Wan2.1-14B weights are published in fp32 (the transformer and Wan2.1_VAE); the UMT5 encoder
  // is released as bf16 (models_t5_umt5-xxl-enc-bf16.pth).
  m.components.push_back(detail::wan21_t2v_14b_transformer(DType::f32));
  m.components.push_back(detail::t5_encoder(T5Variant::umt5_xxl, "text_encoder", 512, DType::bf16));
  m.components.push_back(detail::wan_style_vae(WanVaeClass::wan, DType::f32));
  return m;
}

struct Entry {
  std::string_view name, title, pipeline, description;
  Builder build;
};

constexpr Entry kEntries[] = {
    {"qwen-image", "Qwen-Image", "QwenImagePipeline",
     "20B MMDiT text-to-image with a Qwen2.5-VL-7B text encoder", build_qwen_image},
    {"qwen-image-edit", "Qwen-Image-Edit", "QwenImageEditPipeline",
     "image editing on the Qwen-Image components", build_qwen_image_edit},
    {"flux1-dev", "FLUX.1 [dev]", "FluxPipeline",
     "12B guidance-distilled rectified-flow transformer with CLIP-L and T5-XXL", build_flux1_dev},
    {"flux1-schnell", "FLUX.1 [schnell]", "FluxPipeline",
     "12B timestep-distilled FLUX (1-4 steps, no guidance embedder)", build_flux1_schnell},
    {"sd35-large", "Stable Diffusion 3.5 Large", "StableDiffusion3Pipeline",
     "8B MMDiT with CLIP-L, CLIP-bigG and T5-XXL", build_sd35_large},
    {"sdxl", "Stable Diffusion XL 1.0 (base)", "StableDiffusionXLPipeline",
     "2.6B UNet with CLIP-L and CLIP-bigG (fp16 variant)", build_sdxl},
    {"wan21-t2v-14b", "Wan2.1 T2V 14B", "WanPipeline",
     "14B text-to-video DiT with a UMT5-XXL encoder and a causal 3D VAE", build_wan21_t2v_14b},
};

}  // namespace

std::vector<CatalogEntry> catalog_entries() {
  std::vector<CatalogEntry> out;
  out.reserve(std::size(kEntries));
  for (const auto& e : kEntries)
    out.push_back({std::string(e.name), std::string(e.title), std::string(e.pipeline),
                   std::string(e.description)});
  return out;
}

Result<Model> catalog_model(std::string_view name) noexcept {
  for (const auto& e : kEntries) {
    if (e.name != name) continue;
    Model m = e.build();
    m.name = std::string(e.name);
    m.source = "catalog";
    return m;
  }
  std::string known;
  for (const auto& e : kEntries) {
    if (!known.empty()) known += ", ";
    known += e.name;
  }
  return Status(Errc::not_found, "no built-in model named '" + std::string(name) + "'")
      .with_rule("catalog.unknown_name")
      .with_hint("built-in models: " + known);
}

}  // namespace v1
}  // namespace dmem
