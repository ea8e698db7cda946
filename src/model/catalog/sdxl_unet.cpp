// UNet2DConditionModel as configured for SDXL base 1.0 (diffusers models/unets/
// unet_2d_condition.py, unet_2d_blocks.py, resnets.py, transformers/transformer_2d.py,
// attention.py), published stabilityai/stable-diffusion-xl-base-1.0 unet/config.json. FORMATS.md
// §6.6.
#include <array>

#include "model/catalog/catalog_builder.hpp"
#include "model/catalog/catalog_parts.hpp"

namespace dmem::detail {

namespace {

constexpr std::array<std::uint64_t, 3> kChannels{320, 640, 1280};
constexpr std::array<std::uint64_t, 3> kTransformerLayers{1, 2, 10};
constexpr std::array<bool, 3> kDownCrossAttn{false, true, true};
constexpr std::array<bool, 3> kUpCrossAttn{true, true, false};
constexpr std::uint64_t kLayersPerBlock = 2, kCrossDim = 2048, kAddEmbedIn = 2816;
constexpr std::uint64_t kTemb = 4 * kChannels[0];

// ResnetBlock2D with a time embedding projection.
void resnet(TensorListBuilder& b, const std::string& p, std::uint64_t in, std::uint64_t out) {
  b.norm(join(p, "norm1"), in);
  b.conv(join(p, "conv1"), in, out, {3, 3});
  b.linear(join(p, "time_emb_proj"), kTemb, out);
  b.norm(join(p, "norm2"), out);
  b.conv(join(p, "conv2"), out, out, {3, 3});
  if (in != out) b.conv(join(p, "conv_shortcut"), in, out, {1, 1});
}

// Transformer2DModel with use_linear_projection=True and BasicTransformerBlocks (GEGLU ff).
void transformer2d(TensorListBuilder& b, const std::string& p, std::uint64_t c,
                   std::uint64_t layers) {
  b.norm(join(p, "norm"), c);
  b.linear(join(p, "proj_in"), c, c);
  for (std::uint64_t j = 0; j < layers; ++j) {
    const std::string t = indexed(join(p, "transformer_blocks"), j);
    b.norm(join(t, "norm1"), c);
    for (const char* n : {"attn1.to_q", "attn1.to_k", "attn1.to_v"})
      b.linear(join(t, n), c, c, false);
    b.linear(join(t, "attn1.to_out.0"), c, c);
    b.norm(join(t, "norm2"), c);
    b.linear(join(t, "attn2.to_q"), c, c, false);
    b.linear(join(t, "attn2.to_k"), kCrossDim, c, false);
    b.linear(join(t, "attn2.to_v"), kCrossDim, c, false);
    b.linear(join(t, "attn2.to_out.0"), c, c);
    b.norm(join(t, "norm3"), c);
    feed_forward(b, join(t, "ff"), c, 4 * c, /*gated=*/true);
  }
  b.linear(join(p, "proj_out"), c, c);
}

}  // namespace

Component sdxl_unet(DType dtype) {
  constexpr std::size_t kLevels = kChannels.size();
  TensorListBuilder b(dtype, 1680);
  b.conv("conv_in", 4, kChannels[0], {3, 3});
  two_layer_mlp(b, "time_embedding", kChannels[0], kTemb, kTemb);
  two_layer_mlp(b, "add_embedding", kAddEmbedIn, kTemb, kTemb);

  std::uint64_t out_c = kChannels[0];
  for (std::size_t bi = 0; bi < kLevels; ++bi) {
    const std::uint64_t in_c = out_c;
    out_c = kChannels[bi];
    const std::string blk = indexed("down_blocks", bi);
    for (std::uint64_t r = 0; r < kLayersPerBlock; ++r) {
      resnet(b, indexed(join(blk, "resnets"), r), r == 0 ? in_c : out_c, out_c);
      if (kDownCrossAttn[bi])
        transformer2d(b, indexed(join(blk, "attentions"), r), out_c, kTransformerLayers[bi]);
    }
    if (bi + 1 != kLevels) b.conv(join(blk, "downsamplers.0.conv"), out_c, out_c, {3, 3});
  }

  const std::uint64_t mid = kChannels[kLevels - 1];
  resnet(b, "mid_block.resnets.0", mid, mid);
  transformer2d(b, "mid_block.attentions.0", mid, kTransformerLayers[kLevels - 1]);
  resnet(b, "mid_block.resnets.1", mid, mid);

  out_c = kChannels[kLevels - 1];
  for (std::size_t ui = 0; ui < kLevels; ++ui) {
    const std::size_t level = kLevels - 1 - ui;  // reversed channels
    const std::uint64_t prev = out_c;
    out_c = kChannels[level];
    const std::uint64_t skip_last = kChannels[level == 0 ? 0 : level - 1];
    const std::string blk = indexed("up_blocks", ui);
    constexpr std::uint64_t n = kLayersPerBlock + 1;
    for (std::uint64_t r = 0; r < n; ++r) {
      const std::uint64_t skip = r + 1 == n ? skip_last : out_c;
      const std::uint64_t res_in = r == 0 ? prev : out_c;
      resnet(b, indexed(join(blk, "resnets"), r), res_in + skip, out_c);
      if (kUpCrossAttn[ui])
        transformer2d(b, indexed(join(blk, "attentions"), r), out_c, kTransformerLayers[level]);
    }
    if (ui + 1 != kLevels) b.conv(join(blk, "upsamplers.0.conv"), out_c, out_c, {3, 3});
  }
  b.norm("conv_norm_out", kChannels[0]);
  b.conv("conv_out", kChannels[0], 4, {3, 3});

  Component c;
  c.name = "unet";
  c.role = Role::denoiser;
  c.class_name = "UNet2DConditionModel";
  c.arch.family = "sdxl-unet";
  // Widest level: 1280 channels, 20 heads of 64, GEGLU inner 5120; 70 transformer blocks in all.
  c.arch.hidden = 1280;
  c.arch.layers = 70;
  c.arch.heads = 20;
  c.arch.head_dim = 64;
  c.arch.ffn = 5120;
  c.arch.patch = 1;
  c.arch.patch_t = 1;
  c.arch.in_channels = 4;
  c.arch.latent_channels = 4;
  c.arch.vae_scale = 8;
  c.arch.text_dim = kCrossDim;
  c.arch.max_text_tokens = 77;
  c.tensors = b.take();
  c.config_json = R"({
  "_class_name": "UNet2DConditionModel",
  "act_fn": "silu",
  "addition_embed_type": "text_time",
  "addition_embed_type_num_heads": 64,
  "addition_time_embed_dim": 256,
  "attention_head_dim": [5, 10, 20],
  "block_out_channels": [320, 640, 1280],
  "center_input_sample": false,
  "cross_attention_dim": 2048,
  "down_block_types": ["DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"],
  "downsample_padding": 1,
  "flip_sin_to_cos": true,
  "freq_shift": 0,
  "in_channels": 4,
  "layers_per_block": 2,
  "mid_block_scale_factor": 1,
  "mid_block_type": "UNetMidBlock2DCrossAttn",
  "norm_eps": 1e-05,
  "norm_num_groups": 32,
  "out_channels": 4,
  "projection_class_embeddings_input_dim": 2816,
  "sample_size": 128,
  "transformer_layers_per_block": [1, 2, 10],
  "up_block_types": ["CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"],
  "use_linear_projection": true
})";
  return c;
}

}  // namespace dmem::detail
