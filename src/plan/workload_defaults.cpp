// Default workloads per pipeline family (docs/planner.md, "Defaults and margins"). Sizes and
// steps are the pipelines' own defaults (diffusers) or the model card's recommendation.
#include <algorithm>

#include "dmem/plan.hpp"

namespace dmem {
inline namespace v1 {

const char* guidance_name(Guidance g) noexcept {
  switch (g) {
    case Guidance::off:
      return "off";
    case Guidance::on:
      return "on";
    case Guidance::batched:
      return "batched";
    case Guidance::model_default:
      break;
  }
  return "default";
}

Workload default_workload(const Model& model) noexcept {
  Workload wl;  // 1024x1024, one frame, batch 1, 50 steps
  const auto den = std::find_if(model.components.begin(), model.components.end(),
                                [](const Component& c) { return c.role == Role::denoiser; });
  if (den == model.components.end()) return wl;
  const std::string& family = den->arch.family;
  if (family == "qwen-image-dit") {
    wl.width = wl.height = 1328;  // the model card's 1:1 size
  } else if (family == "flux-dit") {
    // Without a guidance embedder it is the timestep-distilled schnell: 4 steps.
    const bool guidance =
        std::any_of(den->tensors.begin(), den->tensors.end(), [](const TensorInfo& t) {
          return t.name.find("guidance_embedder") != std::string::npos ||
                 t.name.find("guidance_in.") != std::string::npos;
        });
    wl.steps = guidance ? 28 : 4;
  } else if (family == "sd3-dit") {
    wl.steps = 28;
  } else if (family == "wan-dit") {
    wl.width = 832;
    wl.height = 480;
    wl.frames = 81;
  }
  return wl;
}

}  // namespace v1
}  // namespace dmem
