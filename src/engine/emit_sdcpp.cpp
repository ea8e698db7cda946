// The stable-diffusion.cpp emitter: a shell script that writes any GGUF file with dmem convert
// and runs sd-cli with the plan's flags (docs/engines.md, "stable-diffusion.cpp"). The flags are
// the ones the sd.cpp profile expresses; the profile and this file change together.
#include "engine/emit.hpp"
#include "engine/engine_profile.hpp"

namespace dmem::detail {

namespace {

constexpr const char* kPrompt =
    "A coffee shop entrance with a chalkboard sign that reads 'dmem', warm light";

// sd-cli's flag for a text encoder, by its class.
std::string encoder_flag(const Component& c) {
  if (c.class_name == "CLIPTextModel") return "--clip_l";
  if (c.class_name == "CLIPTextModelWithProjection") return "--clip_g";
  if (c.class_name == "T5EncoderModel" || c.class_name == "UMT5EncoderModel") return "--t5xxl";
  return "--llm";  // Qwen2.5-VL for Qwen-Image, the LLM encoders of newer models
}

}  // namespace

Result<std::string> emit_sdcpp(const Model& model, const PlanReport& report, const Plan& plan,
                               std::string_view command) {
  const Expressed x = express_sdcpp(model, plan.strategy);
  if (!x.ok)
    return Status(Errc::unsupported,
                  "plan " + plan.id + " cannot run in stable-diffusion.cpp: " + x.why)
        .with_rule("engine.express")
        .with_hint("plan with --engine sdcpp: every plan it lists can be emitted");
  const Strategy& s = x.strategy;
  const bool flux = model.pipeline_class == "FluxPipeline";
  const bool qwen = model.pipeline_class == "QwenImagePipeline" ||
                    model.pipeline_class == "QwenImageEditPipeline";
  const Workload& wl = report.workload;
  bool all_cpu = true, offload = false, clip_cpu = false, vae_cpu = false;
  for (const auto& cs : s.components) {
    const Component& c = *model.find(cs.component);
    const PlacementKind k = cs.placement.kind;
    all_cpu = all_cpu && k == PlacementKind::cpu;
    offload = offload || k == PlacementKind::model_offload;
    if (k == PlacementKind::cpu && c.role == Role::vae) vae_cpu = true;
    if (k == PlacementKind::cpu && c.role != Role::vae && c.role != Role::denoiser) clip_cpu = true;
  }

  std::string o = shell_header("stable-diffusion.cpp", model, report, plan, s, command);
  o += "#\n# Needs sd-cli from stable-diffusion.cpp";
  o += all_cpu ? " (a CPU build)" : " (built with -DSD_CUDA=ON)";
  o += " and the single-file weights its docs link.\n";
  o += "set -e\n";
  o += "MODELS=\"${MODELS:-models}\"  # the folder with the weights\n";
  o += "SD=\"${SD:-sd-cli}\"\n";
  bool converted = false;
  for (const auto& cs : s.components) {
    const std::string type = gguf_type(cs.storage);
    if (type.empty()) continue;
    if (!converted)
      o += "# GGUF files, quantized by dmem (sd-cli reads the type from the file; --type would "
           "quantize every model alike).\n";
    converted = true;
    const Component& c = *model.find(cs.component);
    o += "[ -f \"$MODELS/" + storage_file(model, cs) + "\" ] || dmem convert \"$MODELS/" +
         component_file(model, c) + "\" -q " + sh_quote("*=" + type) + " -o \"$MODELS/" +
         storage_file(model, cs) + "\"\n";
  }
  std::vector<std::string> args;
  for (const auto& cs : s.components) {
    const Component& c = *model.find(cs.component);
    const std::string file = "\"$MODELS/" + storage_file(model, cs) + "\"";
    if (c.role == Role::denoiser)
      args.push_back("--diffusion-model " + file);
    else if (c.role == Role::vae)
      args.push_back("--vae " + file);
    else
      args.push_back(encoder_flag(c) + " " + file);
  }
  const bool video = model.pipeline_class == "WanPipeline";
  if (video) args.insert(args.begin(), "-M vid_gen");
  args.push_back("-p " + sh_quote(kPrompt));
  if (video)
    args.push_back("--cfg-scale 6.0 --sampling-method euler --flow-shift 3.0 --video-frames " +
                   std::to_string(wl.frames));
  if (flux) args.push_back("--cfg-scale 1.0 --sampling-method euler");
  if (qwen) args.push_back("--cfg-scale 2.5 --sampling-method euler --flow-shift 3");
  args.push_back("-W " + std::to_string(wl.width) + " -H " + std::to_string(wl.height) +
                 " --steps " + std::to_string(wl.steps) + " -s 0");
  std::string memory;
  auto add = [&](const char* flag) { memory += memory.empty() ? flag : std::string(" ") + flag; };
  if (!all_cpu) add("--diffusion-fa");  // flash attention: the attention's activations stay small
  if (offload) add("--offload-to-cpu");
  if (clip_cpu && !all_cpu) add("--clip-on-cpu");
  if (vae_cpu && !all_cpu) add("--vae-on-cpu");
  if (s.vae_tiling) add("--vae-tiling");
  if (!memory.empty()) args.push_back(memory);
  // A video run writes sd-cli's default output name.
  args.push_back(video ? std::string("-v") : "-o dmem-plan-" + plan.id + ".png -v");
  o += "# The text encoders' weights are freed after conditioning (sd-cli's default).\n";
  o += "exec \"$SD\"";
  for (const auto& a : args) o += " \\\n  " + a;
  o += "\n";
  return o;
}

}  // namespace dmem::detail
