#include "format/gguf_arch.hpp"

#include <string_view>
#include <utility>

namespace dmem::detail {

std::string gguf_architecture(const ArchInfo& a) {
  static constexpr std::pair<std::string_view, std::string_view> kArch[] = {
      {"flux-dit", "flux"},
      {"sd3-dit", "sd3"},
      {"wan-dit", "wan"},
      {"sdxl-unet", "sdxl"},
      {"qwen-image-dit", "qwen_image"},
      {"t5", "t5"},
      {"umt5", "umt5"},
      {"qwen2.5-vl", "qwen2vl"},
      {"clip", "clip"}};
  for (const auto& [family, arch] : kArch)
    if (a.family == family) return std::string(arch);
  return {};
}

}  // namespace dmem::detail
