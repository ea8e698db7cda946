#include "model/synthetic_config.hpp"

#include <nlohmann/json.hpp>

#include "format/json_util.hpp"

namespace dmem::detail {

std::string synthesize_config(const Component& c) {
  using nlohmann::json;
  const ArchInfo& a = c.arch;
  json cfg = json::object();
  const auto put = [&](const char* key, std::uint32_t v) {
    if (v != 0) cfg[key] = v;
  };
  if (!c.class_name.empty()) {
    // transformers names its class in "architectures", diffusers in "_class_name".
    if (c.role == Role::text_encoder)
      cfg["architectures"] = json::array({c.class_name});
    else
      cfg["_class_name"] = c.class_name;
  }
  put("in_channels", a.in_channels);
  if (c.role == Role::vae) {
    // The reader takes widths and levels from the tensors (conv_in, down blocks).
    put("latent_channels", a.latent_channels);
    return dump_json(cfg, 2);
  }
  // Keys arch_from_config reads for transformers and DiTs (a UNet without block_out_channels is
  // read the same way).
  put("hidden_size", a.hidden);
  put("num_attention_heads", a.heads);
  put("attention_head_dim", a.head_dim);
  put("num_layers", a.layers);
  put("intermediate_size", a.ffn);
  put("vocab_size", a.vocab);
  if (c.role == Role::denoiser) {
    put("text_dim", a.text_dim);
    put("out_channels", a.latent_channels);
  }
  if (a.family == "flux-dit") {
    // The reader doubles FLUX's patch_size for the pipeline's 2x2 packing when the class says
    // FLUX; without a class it takes the family's 2 from the tensor names.
    if (!c.class_name.empty()) put("patch_size", a.patch / 2);
    if (a.max_text_tokens == 256) cfg["guidance_embeds"] = false;
  } else if (a.family == "wan-dit") {
    if (a.patch != 0) cfg["patch_size"] = json::array({a.patch_t, a.patch, a.patch});
  } else if (a.family == "qwen2.5-vl") {
    json v = json::object();
    if (a.patch != 0) v["patch_size"] = a.patch;
    if (a.patch_t > 1) v["temporal_patch_size"] = a.patch_t;
    if (a.in_channels != 0) v["in_chans"] = a.in_channels;
    cfg["vision_config"] = std::move(v);
  } else if (c.role == Role::denoiser) {
    put("patch_size", a.patch);
  }
  if (a.family == "sdxl-unet") cfg["addition_embed_type"] = "text_time";
  if (a.family == "clip") put("max_position_embeddings", a.max_text_tokens);
  return dump_json(cfg, 2);
}

}  // namespace dmem::detail
