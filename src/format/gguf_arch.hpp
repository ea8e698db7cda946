// The `general.architecture` a GGUF file dmem writes carries for a component (city96 /
// ComfyUI-GGUF names), the inverse of what open_model() maps back to a role and family.
#pragma once

#include <string>

#include "dmem/model.hpp"

namespace dmem::detail {

/// "flux", "sd3", "wan", "sdxl", "qwen_image", "t5", "umt5", "qwen2vl", "clip"; empty for a
/// family GGUF has no name for.
[[nodiscard]] std::string gguf_architecture(const ArchInfo& arch);

}  // namespace dmem::detail
