// Internal: single-file checkpoints (ComfyUI / A1111 style) that hold several components under
// name prefixes ("model.diffusion_model.", "first_stage_model.", "text_encoders.clip_l...").
#pragma once

#include <string>
#include <vector>

#include "dmem/model.hpp"

namespace dmem::detail {

/// True when at least one tensor name starts with a known single-file prefix.
[[nodiscard]] bool has_single_file_prefixes(const std::vector<TensorInfo>& tensors) noexcept;

/// Splits the tensors of one checkpoint (whose files are `files`; TensorInfo::file indexes
/// them) into components by prefix, stripping the prefix from the names. Original tensor names
/// are kept otherwise. `model.diffusion_model.` becomes `unet` for LDM UNet layouts
/// (input_blocks / middle_block) and `transformer` otherwise; T5-XXL is `text_encoder_3` when
/// CLIP-G is present (SD3) and `text_encoder_2` otherwise (FLUX); tensors under no prefix form
/// `other`. Each component keeps only the files its tensors live in. Call only when
/// has_single_file_prefixes() is true.
[[nodiscard]] std::vector<Component> split_single_file(const std::vector<std::string>& files,
                                                       const std::vector<TensorInfo>& tensors);

}  // namespace dmem::detail
