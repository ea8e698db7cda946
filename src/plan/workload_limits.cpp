// Trained resolution and frame ranges per denoiser family, and the frame-count rule of video
// pipelines (docs/planner.md, "Workload"). The figures are the model cards' and papers'.
#include "plan/workload_limits.hpp"

#include <algorithm>
#include <cstdio>

namespace dmem::detail {

namespace {

constexpr WorkloadLimits kLimits[] = {
    {"qwen-image-dit", "Qwen-Image", false, 0.065, 1.77,
     "256x256 up to 1328x1328, 1664x928, 1472x1140, 1584x1056 and their transposes", 1, 1,
     "Qwen-Image model card (aspect-ratio table) and technical report (256p to 1328p)"},
    {"flux-dit", "FLUX.1", false, 0.1, 2.0, "0.1 to 2.0 megapixels", 1, 1,
     "Black Forest Labs' FLUX.1 announcement"},
    {"sd3-dit", "Stable Diffusion 3.5", false, 0.25, 1.1, "about 1 megapixel (1024x1024 buckets)",
     1, 1, "SD3.5 Large model card (1 megapixel)"},
    {"sdxl-unet", "SDXL", false, 0.5, 1.1,
     "aspect buckets of about 1024x1024 pixels (1024x1024, 1152x896, 1344x768 ...)", 1, 1,
     "SDXL paper, multi-aspect training"},
    {"wan-dit", "Wan2.1", true, 0.35, 0.95, "480p (832x480) and 720p (1280x720)", 4, 81,
     "Wan2.1 model card: 480P/720P, 81 frames at 16 fps; the causal VAE compresses 4 frames"},
};

const Component* denoiser_of(const Model& m) {
  for (const auto& c : m.components)
    if (c.role == Role::denoiser) return &c;
  return nullptr;
}

std::string mpix(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2f MP", v);
  return buf;
}

}  // namespace

const WorkloadLimits* workload_limits(const Model& model) noexcept {
  const Component* den = denoiser_of(model);
  if (den == nullptr) return nullptr;
  for (const auto& l : kLimits)
    if (den->arch.family == l.family) return &l;
  return nullptr;
}

Status check_workload(const Model& model, const Workload& w) {
  const WorkloadLimits* l = workload_limits(model);
  if (l == nullptr || w.frames == 1) return Status::ok();
  const std::string frames = std::to_string(w.frames);
  if (!l->video)
    return Status(Errc::invalid_argument, std::string(l->title) + " makes images: " + frames +
                                              " frames do not apply to " + model.name)
        .with_rule("workload.frames")
        .with_hint(
            "drop --frames (frames are for video models such as wan21-t2v-14b); "
            "--batch N asks for several images");
  if ((w.frames - 1) % l->frame_step == 0) return Status::ok();
  // The counts on either side that the VAE can encode: frame_step · k + 1.
  const std::uint32_t below = (w.frames - 1) / l->frame_step * l->frame_step + 1;
  const std::uint32_t above = below + l->frame_step;
  std::string hint = "use --frames ";
  hint += std::to_string(below) + " or " + std::to_string(above);
  hint += " (" + std::to_string(l->frame_step) + "k+1; " + std::to_string(l->max_frames) +
          " is the trained length)";
  return Status(Errc::invalid_argument,
                std::string(l->title) + " takes " + std::to_string(l->frame_step) +
                    "k+1 frames (its VAE compresses " + std::to_string(l->frame_step) +
                    " frames into one latent after the first); " + frames + " is not one")
      .with_rule("workload.frames")
      .with_hint(std::move(hint));
}

std::vector<std::string> workload_warnings(const Model& model, const Workload& w) {
  std::vector<std::string> out;
  const WorkloadLimits* l = workload_limits(model);
  if (l == nullptr) return out;
  const std::string size = std::to_string(w.width) + "x" + std::to_string(w.height);
  const double mp = static_cast<double>(w.width) * static_cast<double>(w.height) / 1e6;
  if (mp > l->max_mpix || mp < l->min_mpix) {
    std::string s = size + " (" + mpix(mp) + ") is ";
    s += mp > l->max_mpix ? "above" : "below";
    s += std::string(" the range ") + l->title + " was trained on (" + mpix(l->min_mpix) + " to " +
         mpix(l->max_mpix) + ": " + l->trained + "); expect ";
    s += mp > l->max_mpix ? "repeated subjects and broken composition" : "blurry, broken images";
    s += ". The estimates still hold.";
    out.push_back(std::move(s));
  }
  if (l->video && w.frames > l->max_frames)
    out.push_back(std::to_string(w.frames) + " frames is longer than the " +
                  std::to_string(l->max_frames) + " " + l->title +
                  " was trained on; expect motion to loop or drift. The estimates still hold.");
  const Component* den = denoiser_of(model);
  const std::uint32_t multiple = std::max(1u, den->arch.vae_scale) * std::max(1u, den->arch.patch);
  if (multiple > 1 && (w.width % multiple != 0 || w.height % multiple != 0)) {
    auto near = [&](std::uint32_t v) {
      const std::uint32_t lo = v / multiple * multiple;
      if (lo == v) return std::to_string(v);
      return lo == 0 ? std::to_string(multiple)
                     : std::to_string(lo) + " or " + std::to_string(lo + multiple);
    };
    out.push_back(size + ": " + l->title + " needs sides that are multiples of " +
                  std::to_string(multiple) + " (VAE " + std::to_string(den->arch.vae_scale) +
                  " x patch " + std::to_string(std::max(1u, den->arch.patch)) +
                  "); pipelines round or refuse it. Nearest: width " + near(w.width) + ", height " +
                  near(w.height) + ".");
  }
  return out;
}

}  // namespace dmem::detail
