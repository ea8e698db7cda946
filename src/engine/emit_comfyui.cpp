// The ComfyUI emitter: a shell script that writes any GGUF file with dmem convert, writes a
// minimal API-format workflow with the plan's loader nodes, and launches ComfyUI with the plan's
// memory flags. The flags and nodes are the ones the ComfyUI profile expresses
// (docs/engines.md, "ComfyUI"); the profile and this file change together.
#include <algorithm>
#include <cstdio>
#include <nlohmann/json.hpp>

#include "engine/emit.hpp"
#include "engine/engine_profile.hpp"

namespace dmem::detail {

namespace {

constexpr double kGiB = 1024.0 * 1024.0 * 1024.0;
constexpr const char* kPrompt =
    "A coffee shop entrance with a chalkboard sign that reads 'dmem', warm light";

std::string weight_dtype(const Storage& st) {
  if (is_quantizer(st, "fp8")) return "fp8_e4m3fn_fast";
  if (st.kind == StorageKind::layerwise_cast && st.cast_dtype == DType::f8_e4m3)
    return "fp8_e4m3fn";
  if (st.kind == StorageKind::layerwise_cast && st.cast_dtype == DType::f8_e5m2) return "fp8_e5m2";
  return "default";
}

// The launch flag storing every text encoder (or the VAE, or the diffusion model) in a dtype.
std::string dtype_flag(const Storage& st, const char* what) {
  if (st.kind != StorageKind::layerwise_cast) return {};
  std::string d;
  switch (st.cast_dtype) {
    case DType::f8_e4m3:
      d = "fp8_e4m3fn";
      break;
    case DType::f8_e5m2:
      d = "fp8_e5m2";
      break;
    case DType::f16:
      d = "fp16";
      break;
    default:
      d = "bf16";
      break;
  }
  std::string flag = "--";
  flag += d;
  flag += "-";
  flag += what;
  return flag;
}

}  // namespace

Result<std::string> emit_comfyui(const Model& model, const PlanReport& report, const Plan& plan,
                                 std::string_view command) {
  const Expressed x = express_comfyui(model, plan.strategy);
  if (!x.ok)
    return Status(Errc::unsupported, "plan " + plan.id + " cannot run in ComfyUI: " + x.why)
        .with_rule("engine.express")
        .with_hint("plan with --engine comfyui: every plan it lists can be emitted");
  const Strategy& s = x.strategy;
  const ComfyMode mode = comfy_mode(model, s);
  const bool flux = model.pipeline_class == "FluxPipeline";
  const bool qwen = model.pipeline_class == "QwenImagePipeline";
  const Workload& wl = report.workload;

  const ComponentStrategy* den = nullptr;
  const ComponentStrategy* vae = nullptr;
  std::vector<const ComponentStrategy*> tes;
  for (const auto& cs : s.components) {
    const Component* c = model.find(cs.component);
    if (c->role == Role::denoiser)
      den = &cs;
    else if (c->role == Role::vae)
      vae = &cs;
    else
      tes.push_back(&cs);
  }

  // ---- launch flags ------------------------------------------------------------------------
  std::vector<std::string> flags;
  switch (mode) {
    case ComfyMode::gpu_only:
      flags.push_back("--gpu-only");
      break;
    case ComfyMode::normal:
      if (den != nullptr && den->placement.kind == PlacementKind::model_offload)
        flags.push_back("--disable-smart-memory");
      break;
    case ComfyMode::lowvram: {
      // What dmem's plan leaves unused stays reserved, so ComfyUI's own partial load stops near
      // the plan's split (it also keeps ~0.8 GiB for inference).
      double free = 0;
      if (!report.hardware.gpus.empty())
        free = static_cast<double>(report.hardware.gpus.front().vram_free) / kGiB;
      const double peak = static_cast<double>(plan.estimate.vram_peak_bytes) / kGiB;
      const double reserve = free > peak ? static_cast<int>((free - peak) * 10) / 10.0 : 0.0;
      char buf[32];
      std::snprintf(buf, sizeof buf, "%.1f", reserve);
      flags.push_back("--reserve-vram");
      flags.push_back(buf);
      flags.push_back("--async-offload");
      break;
    }
    case ComfyMode::novram:
      flags.push_back("--novram");
      flags.push_back("--async-offload");
      break;
    case ComfyMode::cpu:
      flags.push_back("--cpu");
      break;
  }
  if (den != nullptr && den->storage.kind == StorageKind::layerwise_cast &&
      weight_dtype(den->storage) == "default")
    flags.push_back(dtype_flag(den->storage, "unet"));
  for (const auto* cs : tes)
    if (std::string f = dtype_flag(cs->storage, "text-enc"); !f.empty()) {
      flags.push_back(f);  // one flag for every text encoder
      break;
    }
  if (vae != nullptr) {
    if (std::string f = dtype_flag(vae->storage, "vae"); !f.empty()) flags.push_back(f);
    if (vae->placement.kind == PlacementKind::cpu && mode != ComfyMode::cpu)
      flags.push_back("--cpu-vae");
  }
  if (den != nullptr && den->placement.gpu > 0) {
    flags.push_back("--cuda-device");
    flags.push_back(std::to_string(den->placement.gpu));
  }

  // ---- loader nodes ------------------------------------------------------------------------
  const bool te_gguf = std::any_of(tes.begin(), tes.end(), [](const ComponentStrategy* cs) {
    return !gguf_type(cs->storage).empty();
  });
  const bool te_cpu = !tes.empty() && tes.front()->placement.kind == PlacementKind::cpu &&
                      mode != ComfyMode::cpu && mode != ComfyMode::novram;
  nlohmann::ordered_json den_node, te_node, vae_node;
  if (den != nullptr) {
    if (!gguf_type(den->storage).empty()) {
      den_node = {{"class_type", "UnetLoaderGGUF"},
                  {"inputs", {{"unet_name", storage_file(model, *den)}}}};
    } else {
      den_node = {{"class_type", "UNETLoader"},
                  {"inputs",
                   {{"unet_name", storage_file(model, *den)},
                    {"weight_dtype", weight_dtype(den->storage)}}}};
    }
  }
  const std::string clip_type = flux ? "flux" : qwen ? "qwen_image" : "stable_diffusion";
  if (!tes.empty()) {
    nlohmann::ordered_json in;
    std::string cls = tes.size() == 1   ? "CLIPLoader"
                      : tes.size() == 2 ? "DualCLIPLoader"
                                        : "TripleCLIPLoader";
    if (tes.size() == 1) {
      in["clip_name"] = storage_file(model, *tes.front());
    } else {
      for (std::size_t i = 0; i < tes.size(); ++i)
        in["clip_name" + std::to_string(i + 1)] = storage_file(model, *tes[i]);
    }
    if (tes.size() <= 2) in["type"] = clip_type;
    if (te_gguf && tes.size() <= 3) {
      cls += "GGUF";  // ComfyUI-GGUF: CLIPLoaderGGUF, DualCLIPLoaderGGUF, TripleCLIPLoaderGGUF
    } else if (tes.size() <= 2) {
      in["device"] = te_cpu ? "cpu" : "default";
    }
    te_node = {{"class_type", cls}, {"inputs", in}};
  }
  if (vae != nullptr)
    vae_node = {{"class_type", "VAELoader"},
                {"inputs", {{"vae_name", component_file(model, *model.find(vae->component))}}}};

  std::string o = shell_header("ComfyUI", model, report, plan, s, command);
  o += "#\n";
  o += "# Needs ComfyUI";
  if (te_gguf || (den != nullptr && !gguf_type(den->storage).empty()))
    o += " and the ComfyUI-GGUF custom nodes (custom_nodes/ComfyUI-GGUF, pip install gguf)";
  o += ". Loader nodes for this plan:\n";
  auto describe = [&](const std::string& who, const nlohmann::ordered_json& node) {
    if (node.is_null()) return;
    std::string line = "#   " + who + " ";
    if (line.size() < 34) line.append(34 - line.size(), ' ');
    line += node["class_type"].get<std::string>();
    for (const auto& [k, v] : node["inputs"].items())
      line += " " + k + "=" + (v.is_string() ? v.get<std::string>() : v.dump());
    o += one_line(line) + "\n";
  };
  if (den != nullptr) describe(den->component, den_node);
  std::string te_names;
  for (const auto* cs : tes) te_names += (te_names.empty() ? "" : "+") + cs->component;
  describe(te_names, te_node);
  if (vae != nullptr) describe(vae->component, vae_node);
  o += std::string("#   decode                        ") +
       (s.vae_tiling ? "VAEDecodeTiled (tiles bound the decode's activations)" : "VAEDecode") +
       "\n";
  o += "set -e\n";
  o += "COMFY=\"${COMFY:-ComfyUI}\"  # the ComfyUI folder\n";
  o += "MODELS=\"$COMFY/models\"\n";

  // ---- GGUF files ---------------------------------------------------------------------------
  bool converted = false;
  for (const auto& cs : s.components) {
    const std::string type = gguf_type(cs.storage);
    if (type.empty()) continue;
    const Component& c = *model.find(cs.component);
    const std::string folder = c.role == Role::denoiser ? "diffusion_models" : "text_encoders";
    if (!converted)
      o += "# GGUF files, quantized by dmem from the repackaged single files (tensor names as "
           "ComfyUI reads them).\n";
    converted = true;
    o += "[ -f \"$MODELS/" + folder + "/" + storage_file(model, cs) +
         "\" ] || dmem convert \"$MODELS/" + folder + "/" + component_file(model, c) + "\" -q " +
         sh_quote("*=" + type) + " -o \"$MODELS/" + folder + "/" + storage_file(model, cs) + "\"\n";
  }

  // ---- workflow (API format) ----------------------------------------------------------------
  const std::string json_file = "dmem-plan-" + plan.id + ".json";
  if ((flux || qwen) && den != nullptr && vae != nullptr && !tes.empty()) {
    nlohmann::ordered_json g;
    g["1"] = den_node;
    g["2"] = te_node;
    g["3"] = vae_node;
    g["4"] = {{"class_type", "CLIPTextEncode"},
              {"inputs", {{"text", kPrompt}, {"clip", {"2", 0}}}}};
    g["5"] = {{"class_type", "CLIPTextEncode"}, {"inputs", {{"text", " "}, {"clip", {"2", 0}}}}};
    nlohmann::ordered_json positive = {"4", 0};
    nlohmann::ordered_json model_out = {"1", 0};
    if (flux) {
      g["6"] = {{"class_type", "FluxGuidance"},
                {"inputs", {{"conditioning", {"4", 0}}, {"guidance", 3.5}}}};
      positive = {"6", 0};
    } else {
      g["6"] = {{"class_type", "ModelSamplingAuraFlow"},
                {"inputs", {{"model", {"1", 0}}, {"shift", 3.1}}}};
      model_out = {"6", 0};
    }
    g["7"] = {{"class_type", "EmptySD3LatentImage"},
              {"inputs", {{"width", wl.width}, {"height", wl.height}, {"batch_size", 1}}}};
    g["8"] = {{"class_type", "KSampler"},
              {"inputs",
               {{"model", model_out},
                {"seed", 0},
                {"steps", wl.steps},
                {"cfg", flux ? 1.0 : 2.5},
                {"sampler_name", "euler"},
                {"scheduler", "simple"},
                {"positive", positive},
                {"negative", {"5", 0}},
                {"latent_image", {"7", 0}},
                {"denoise", 1.0}}}};
    if (s.vae_tiling)
      g["9"] = {{"class_type", "VAEDecodeTiled"},
                {"inputs",
                 {{"samples", {"8", 0}},
                  {"vae", {"3", 0}},
                  {"tile_size", 512},
                  {"overlap", 64},
                  {"temporal_size", 64},
                  {"temporal_overlap", 8}}}};
    else
      g["9"] = {{"class_type", "VAEDecode"},
                {"inputs", {{"samples", {"8", 0}}, {"vae", {"3", 0}}}}};
    g["10"] = {{"class_type", "SaveImage"},
               {"inputs", {{"images", {"9", 0}}, {"filename_prefix", "dmem-plan-" + plan.id}}}};
    nlohmann::ordered_json body;
    body["prompt"] = std::move(g);
    o += "# The workflow in API format; once ComfyUI runs, queue it with\n";
    o += "#   curl -s -H 'Content-Type: application/json' --data @" + json_file +
         " http://127.0.0.1:8188/prompt\n";
    o += "cat > " + json_file + " <<'DMEM_JSON'\n";
    o += body.dump(2) + "\n";
    o += "DMEM_JSON\n";
  } else {
    o += "# No workflow template for " + one_line(model.pipeline_class) +
         ": build one with the loader nodes above.\n";
  }

  // ---- launch -------------------------------------------------------------------------------
  o += "# Launch ComfyUI with the plan's memory flags.\n";
  std::string launch = "exec python \"$COMFY/main.py\"";
  for (const auto& f : flags) launch += " " + f;
  o += launch + "\n";
  return o;
}

}  // namespace dmem::detail
