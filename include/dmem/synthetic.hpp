// Scaled-down models with generated weights: the same pipeline, small enough to run in seconds on
// a laptop CPU (`dmem run --scale-down F`). docs/synthetic.md explains how dims are chosen.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "dmem/model.hpp"
#include "dmem/status.hpp"

namespace dmem {
inline namespace v1 {

/// Dimensions up to this size are kept as they are (channels of images and latents, patch and
/// kernel sizes, timestep frequencies of 16); larger ones are divided by the factor.
inline constexpr std::uint64_t kScaleDownKeepDim = 16;
/// Largest factor scale_down() accepts.
inline constexpr double kScaleDownMaxFactor = 1e6;

struct ScaleDown {
  double factor = 16;            ///< divides hidden sizes and layer counts; 1 <= factor <= 1e6
  std::uint32_t min_blocks = 1;  ///< blocks kept per block sequence, at least (capped at its count)
  std::uint64_t seed = 1;        ///< for callers that go on to write_synthetic_model()
};

/// The same model with hidden sizes and layer counts divided by `options.factor`: the same
/// components (names, roles, class names); every tensor outside repeated blocks; in each repeated
/// block sequence the blocks with index < max(min_blocks, ceil(count / factor)); the same dtypes.
/// Every dimension d > kScaleDownKeepDim becomes max(1, ceil(d / factor)), rounded up to a whole
/// number of blocks where it is the innermost dimension of a block-quantized (or packed sub-byte)
/// tensor; the map depends on the value only, so a size shared by two tensors stays shared and
/// linear layers still chain. ArchInfo and config_json are scaled to match; nbytes is exact;
/// `files` is empty and every tensor's file is kNoFile. Errc::invalid_argument for a factor
/// that is NaN, below 1 or above kScaleDownMaxFactor.
[[nodiscard]] Result<Model> scale_down(const Model& model, const ScaleDown& options) noexcept;

/// Writes `model` (usually a scaled one) with deterministic pseudo-random weights under `dir`,
/// which must not exist or be an empty folder, and returns the path open_model() reads it from.
/// Models whose dtypes safetensors stores become a diffusers folder (model_index.json, and per
/// component a folder with config.json and diffusion_pytorch_model.safetensors or
/// model.safetensors); the path is `dir`. A one-component model with GGML block types becomes
/// `dir/<component>.gguf`, which is the path returned. Everything is written into a temporary
/// folder beside `dir` and renamed into place: on failure nothing is left at `dir`.
/// Values: weights of rank >= 2 uniform in +-1/sqrt(fan_in), norm weights 1 +- 1/64, biases and
/// other tensors uniform in +-1/64, then converted to each tensor's dtype. A seed gives the same
/// bytes on every machine. Memory: the largest component's bytes plus one tensor in f32.
[[nodiscard]] Result<std::string> write_synthetic_model(const Model& model, std::string_view dir,
                                                        std::uint64_t seed = 1) noexcept;

}  // namespace v1
}  // namespace dmem
