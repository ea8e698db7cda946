// AutoencoderKL (diffusers models/autoencoders/autoencoder_kl.py, vae.py Encoder/Decoder,
// unet_2d_blocks.py DownEncoderBlock2D / UpDecoderBlock2D / UNetMidBlock2D, resnets.py
// ResnetBlock2D without time embedding, attention_processor.py Attention with group_norm).
// Configs: SDXL (4 latent channels, quant convs), FLUX.1 and SD3/SD3.5 (16 latent channels,
// use_quant_conv / use_post_quant_conv false).
#include <array>

#include "model/catalog/catalog_builder.hpp"
#include "model/catalog/catalog_parts.hpp"

namespace dmem::detail {

namespace {

constexpr std::array<std::uint64_t, 4> kChannels{128, 256, 512, 512};
constexpr std::uint64_t kLayersPerBlock = 2, kIn = 3;

void resnet(TensorListBuilder& b, const std::string& p, std::uint64_t in, std::uint64_t out) {
  b.norm(join(p, "norm1"), in);
  b.conv(join(p, "conv1"), in, out, {3, 3});
  b.norm(join(p, "norm2"), out);
  b.conv(join(p, "conv2"), out, out, {3, 3});
  if (in != out) b.conv(join(p, "conv_shortcut"), in, out, {1, 1});
}

// UNetMidBlock2D: resnet, single-head self-attention over channels, resnet.
void mid_block(TensorListBuilder& b, const std::string& p, std::uint64_t c) {
  resnet(b, join(p, "resnets.0"), c, c);
  const std::string attn = join(p, "attentions.0");
  b.norm(join(attn, "group_norm"), c);
  for (const char* n : {"to_q", "to_k", "to_v", "to_out.0"}) b.linear(join(attn, n), c, c);
  resnet(b, join(p, "resnets.1"), c, c);
}

}  // namespace

Component kl_vae(KlVae variant, DType dtype) {
  constexpr std::size_t kLevels = kChannels.size();
  const bool sdxl = variant == KlVae::sdxl;
  const std::uint64_t latent = sdxl ? 4 : 16;
  const bool quant_convs = sdxl;

  TensorListBuilder b(dtype, sdxl ? 248 : 244);
  b.conv("encoder.conv_in", kIn, kChannels[0], {3, 3});
  std::uint64_t out_c = kChannels[0];
  for (std::size_t i = 0; i < kLevels; ++i) {
    const std::uint64_t in_c = out_c;
    out_c = kChannels[i];
    const std::string blk = indexed("encoder.down_blocks", i);
    for (std::uint64_t r = 0; r < kLayersPerBlock; ++r)
      resnet(b, indexed(join(blk, "resnets"), r), r == 0 ? in_c : out_c, out_c);
    if (i + 1 != kLevels) b.conv(join(blk, "downsamplers.0.conv"), out_c, out_c, {3, 3});
  }
  const std::uint64_t top = kChannels[kLevels - 1];
  mid_block(b, "encoder.mid_block", top);
  b.norm("encoder.conv_norm_out", top);
  b.conv("encoder.conv_out", top, 2 * latent, {3, 3});  // double_z: mean and log-variance

  b.conv("decoder.conv_in", latent, top, {3, 3});
  mid_block(b, "decoder.mid_block", top);
  out_c = top;
  for (std::size_t i = 0; i < kLevels; ++i) {
    const std::uint64_t prev = out_c;
    out_c = kChannels[kLevels - 1 - i];
    const std::string blk = indexed("decoder.up_blocks", i);
    for (std::uint64_t r = 0; r < kLayersPerBlock + 1; ++r)
      resnet(b, indexed(join(blk, "resnets"), r), r == 0 ? prev : out_c, out_c);
    if (i + 1 != kLevels) b.conv(join(blk, "upsamplers.0.conv"), out_c, out_c, {3, 3});
  }
  b.norm("decoder.conv_norm_out", kChannels[0]);
  b.conv("decoder.conv_out", kChannels[0], kIn, {3, 3});
  if (quant_convs) {
    b.conv("quant_conv", 2 * latent, 2 * latent, {1, 1});
    b.conv("post_quant_conv", latent, latent, {1, 1});
  }

  Component c;
  c.name = "vae";
  c.role = Role::vae;
  c.class_name = "AutoencoderKL";
  c.arch.family = "vae-kl";
  c.arch.hidden = kChannels[0];
  c.arch.layers = kLevels;
  c.arch.heads = 1;
  c.arch.head_dim = static_cast<std::uint32_t>(top);
  c.arch.in_channels = kIn;
  c.arch.latent_channels = static_cast<std::uint32_t>(latent);
  c.arch.vae_scale = 8;  // three downsamplers
  c.tensors = b.take();

  const char* tail = nullptr;
  switch (variant) {
    case KlVae::sdxl:
      tail = R"(
  "force_upcast": true,
  "latent_channels": 4,
  "scaling_factor": 0.13025,
  "use_post_quant_conv": true,
  "use_quant_conv": true
})";
      break;
    case KlVae::flux:
      tail = R"(
  "force_upcast": true,
  "latent_channels": 16,
  "scaling_factor": 0.3611,
  "shift_factor": 0.1159,
  "use_post_quant_conv": false,
  "use_quant_conv": false
})";
      break;
    case KlVae::sd3:
      tail = R"(
  "force_upcast": true,
  "latent_channels": 16,
  "scaling_factor": 1.5305,
  "shift_factor": 0.0609,
  "use_post_quant_conv": false,
  "use_quant_conv": false
})";
      break;
  }
  c.config_json = std::string(R"({
  "_class_name": "AutoencoderKL",
  "act_fn": "silu",
  "block_out_channels": [128, 256, 512, 512],
  "down_block_types": ["DownEncoderBlock2D", "DownEncoderBlock2D", "DownEncoderBlock2D", "DownEncoderBlock2D"],
  "in_channels": 3,
  "layers_per_block": 2,
  "norm_num_groups": 32,
  "out_channels": 3,
  "sample_size": 1024,
  "up_block_types": ["UpDecoderBlock2D", "UpDecoderBlock2D", "UpDecoderBlock2D", "UpDecoderBlock2D"],)") +
                  tail;
  return c;
}

}  // namespace dmem::detail
