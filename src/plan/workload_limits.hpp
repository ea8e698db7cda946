// Internal: what each denoiser family was trained for (resolution, frames) and the frame-count
// rules of video pipelines. make_plans() and validate() refuse a workload the pipeline cannot
// run, and the planner warns about one it was not trained for (docs/planner.md, "Workload").
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "dmem/model.hpp"
#include "dmem/plan.hpp"
#include "dmem/status.hpp"

namespace dmem::detail {

struct WorkloadLimits {
  const char* family;            ///< ArchInfo::family of the denoiser
  const char* title;             ///< the model family as users name it
  bool video = false;            ///< takes a frame count
  double min_mpix = 0;           ///< trained pixel counts (megapixels, 10^6 pixels)
  double max_mpix = 0;           ///<
  const char* trained = "";      ///< the trained sizes as the model card lists them
  std::uint32_t frame_step = 1;  ///< frames = frame_step · k + 1 (video)
  std::uint32_t max_frames = 1;  ///< the longest clip trained on (video)
  const char* source = "";       ///< where the figures come from
};

/// The limits of the model's denoiser family, or nullptr (unknown family, no denoiser).
[[nodiscard]] const WorkloadLimits* workload_limits(const Model& model) noexcept;

/// A workload the pipeline cannot run: frames on an image model, a video frame count that is not
/// frame_step · k + 1. Errc::invalid_argument with rule `workload.frames` naming the valid counts.
[[nodiscard]] Status check_workload(const Model& model, const Workload& workload);

/// A workload the model was not trained for: resolution outside the trained pixel range, more
/// frames than trained, sides that are not a multiple of the latent patch. One line each.
[[nodiscard]] std::vector<std::string> workload_warnings(const Model& model,
                                                         const Workload& workload);

}  // namespace dmem::detail
