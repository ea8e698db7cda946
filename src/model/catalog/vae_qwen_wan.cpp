// The Wan2.1-style causal 3D VAE: AutoencoderKLQwenImage (diffusers models/autoencoders/
// autoencoder_kl_qwenimage.py) and AutoencoderKLWan (autoencoder_kl_wan.py, is_residual=false).
// Both publish the same config (base_dim 96, z_dim 16, dim_mult [1,2,4,4], 2 res blocks,
// temperal_downsample [false,true,true]) and, as autoencoder_kl_wan.py shows, the same module
// names: flat encoder.down_blocks (residual blocks and resamplers), decoder.up_blocks.N.{resnets,
// upsamplers.0}. FORMATS.md §6.3.
#include <array>

#include "model/catalog/catalog_builder.hpp"
#include "model/catalog/catalog_parts.hpp"

namespace dmem::detail {

namespace {

constexpr std::uint64_t kBase = 96, kZ = 16, kResBlocks = 2, kIn = 3;
constexpr std::array<std::uint64_t, 4> kMult{1, 2, 4, 4};
constexpr std::array<bool, 3> kTemporalDown{false, true, true};

// RMS_norm.gamma: (dim, 1, 1, 1) over video, (dim, 1, 1) inside the attention block.
void rms(TensorListBuilder& b, const std::string& p, std::uint64_t d, bool images) {
  if (images)
    b.add(join(p, "gamma"), {d, 1, 1});
  else
    b.add(join(p, "gamma"), {d, 1, 1, 1});
}

void residual(TensorListBuilder& b, const std::string& p, std::uint64_t in, std::uint64_t out) {
  rms(b, join(p, "norm1"), in, false);
  b.conv(join(p, "conv1"), in, out, {3, 3, 3});
  rms(b, join(p, "norm2"), out, false);
  b.conv(join(p, "conv2"), out, out, {3, 3, 3});
  if (in != out) b.conv(join(p, "conv_shortcut"), in, out, {1, 1, 1});
}

void mid_block(TensorListBuilder& b, const std::string& p, std::uint64_t d) {
  residual(b, join(p, "resnets.0"), d, d);
  const std::string attn = join(p, "attentions.0");
  rms(b, join(attn, "norm"), d, true);
  b.conv(join(attn, "to_qkv"), d, 3 * d, {1, 1});
  b.conv(join(attn, "proj"), d, d, {1, 1});
  residual(b, join(p, "resnets.1"), d, d);
}

enum class Resample { down2d, down3d, up2d, up3d };

void resample(TensorListBuilder& b, const std::string& p, std::uint64_t d, Resample mode) {
  const bool up = mode == Resample::up2d || mode == Resample::up3d;
  b.conv(join(p, "resample.1"), d, up ? d / 2 : d, {3, 3});
  if (mode == Resample::down3d) b.conv(join(p, "time_conv"), d, d, {3, 1, 1});
  if (mode == Resample::up3d) b.conv(join(p, "time_conv"), d, 2 * d, {3, 1, 1});
}

}  // namespace

Component wan_style_vae(WanVaeClass cls, DType dtype) {
  constexpr std::size_t kLevels = kMult.size();
  TensorListBuilder b(dtype, 194);

  // Encoder: dims = base * [1, mult...]; outputs 2 * z_dim (mean and log-variance).
  std::array<std::uint64_t, kLevels + 1> dims{};
  dims[0] = kBase;
  for (std::size_t i = 0; i < kLevels; ++i) dims[i + 1] = kBase * kMult[i];
  b.conv("encoder.conv_in", kIn, dims[0], {3, 3, 3});
  std::uint64_t k = 0;
  for (std::size_t i = 0; i < kLevels; ++i) {
    std::uint64_t in = dims[i];
    const std::uint64_t out = dims[i + 1];
    for (std::uint64_t r = 0; r < kResBlocks; ++r, ++k) {
      residual(b, indexed("encoder.down_blocks", k), in, out);
      in = out;
    }
    if (i + 1 != kLevels) {
      resample(b, indexed("encoder.down_blocks", k), out,
               kTemporalDown[i] ? Resample::down3d : Resample::down2d);
      ++k;
    }
  }
  const std::uint64_t top = dims[kLevels];
  mid_block(b, "encoder.mid_block", top);
  rms(b, "encoder.norm_out", top, false);
  b.conv("encoder.conv_out", top, 2 * kZ, {3, 3, 3});
  b.conv("quant_conv", 2 * kZ, 2 * kZ, {1, 1, 1});
  b.conv("post_quant_conv", kZ, kZ, {1, 1, 1});

  // Decoder: dims = base * [mult[-1], reversed(mult)...]; upsampling halves the channels that
  // enter the next level.
  std::array<std::uint64_t, kLevels + 1> ddims{};
  ddims[0] = kBase * kMult[kLevels - 1];
  for (std::size_t i = 0; i < kLevels; ++i) ddims[i + 1] = kBase * kMult[kLevels - 1 - i];
  b.conv("decoder.conv_in", kZ, ddims[0], {3, 3, 3});
  mid_block(b, "decoder.mid_block", ddims[0]);
  for (std::size_t i = 0; i < kLevels; ++i) {
    std::uint64_t in = i > 0 ? ddims[i] / 2 : ddims[i];
    const std::uint64_t out = ddims[i + 1];
    const std::string blk = indexed("decoder.up_blocks", i);
    for (std::uint64_t r = 0; r < kResBlocks + 1; ++r) {
      residual(b, indexed(join(blk, "resnets"), r), in, out);
      in = out;
    }
    if (i + 1 != kLevels) {
      const bool temporal = kTemporalDown[kLevels - 2 - i];  // reversed temperal_downsample
      resample(b, join(blk, "upsamplers.0"), out, temporal ? Resample::up3d : Resample::up2d);
    }
  }
  rms(b, "decoder.norm_out", ddims[kLevels], false);
  b.conv("decoder.conv_out", ddims[kLevels], kIn, {3, 3, 3});

  const bool qwen = cls == WanVaeClass::qwen_image;
  Component c;
  c.name = "vae";
  c.role = Role::vae;
  c.class_name = qwen ? "AutoencoderKLQwenImage" : "AutoencoderKLWan";
  c.arch.family = "vae-wan";
  c.arch.hidden = kBase;
  c.arch.layers = kLevels;
  c.arch.heads = 1;  // single-head attention in the mid blocks
  c.arch.head_dim = static_cast<std::uint32_t>(top);
  c.arch.patch_t = 1;
  c.arch.in_channels = kIn;
  c.arch.latent_channels = kZ;
  c.arch.vae_scale = 8;    // 2 ** len(temperal_downsample)
  c.arch.vae_scale_t = 4;  // two temporal downsamples
  c.tensors = b.take();
  c.config_json = fill_template(R"({
  "_class_name": "{}",
  "attn_scales": [],
  "base_dim": 96,
  "dim_mult": [1, 2, 4, 4],
  "dropout": 0.0,
  "latents_mean": [-0.7571, -0.7089, -0.9113, 0.1075, -0.1745, 0.9653, -0.1517, 1.5508, 0.4134, -0.0715, 0.5517, -0.3632, -0.1922, -0.9497, 0.2503, -0.2921],
  "latents_std": [2.8184, 1.4541, 2.3275, 2.6558, 1.2196, 1.7708, 2.6052, 2.0743, 3.2687, 2.1526, 2.8652, 1.5579, 1.6382, 1.1253, 2.8251, 1.916],
  "num_res_blocks": 2,
  "temperal_downsample": [false, true, true],
  "z_dim": 16
})",
                                {c.class_name});
  return c;
}

}  // namespace dmem::detail
