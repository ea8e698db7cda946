// emit_plan: finds the plan and hands it to its engine's emitter; and what the shell emitters
// (ComfyUI, sd.cpp) share.
#include "engine/emit.hpp"

#include <cctype>

#include "dmem/units.hpp"
#include "engine/engine_profile.hpp"

namespace dmem::detail {

Result<std::string> emit_plan(const Model& model, const PlanReport& report,
                              std::string_view plan_id, std::string_view command) {
  const Engine engine = report.options.engine;
  const Plan* plan = nullptr;
  for (const auto& p : report.plans)
    if (p.id == plan_id) plan = &p;
  if (plan == nullptr) {
    std::string hint = report.plans.empty()
                           ? "no plan fits this machine for " + std::string(engine_name(engine)) +
                                 ": see dmem plan without --emit for the rejected ones"
                           : "write --emit N with N from 1 to " +
                                 std::to_string(report.plans.size()) + " (the # column)";
    return Status(Errc::invalid_argument, "--emit: no plan '" + std::string(plan_id) + "' for " +
                                              std::string(engine_name(engine)))
        .with_rule("cli.flag")
        .with_hint(std::move(hint));
  }
  switch (engine) {
    case Engine::dmem:
      return strategy_to_json(plan->strategy) + "\n";
    case Engine::diffusers:
      return emit_diffusers(model, report, *plan, command);
    case Engine::comfyui:
      return emit_comfyui(model, report, *plan, command);
    case Engine::sdcpp:
      return emit_sdcpp(model, report, *plan, command);
  }
  return Status(Errc::unsupported, "no emitter for this engine").with_rule("engine.unknown");
}

std::string sh_quote(std::string_view s) {
  std::string out = "'";
  for (char ch : s) {
    if (ch == '\'')
      out += "'\\''";
    else if (ch == '\n' || ch == '\r')
      out += ' ';
    else
      out += ch;
  }
  out += '\'';
  return out;
}

std::string one_line(std::string_view s) {
  std::string out;
  for (char ch : s) out += (ch == '\n' || ch == '\r') ? ' ' : ch;
  return out;
}

std::string shell_header(std::string_view engine_title, const Model& model,
                         const PlanReport& report, const Plan& plan, const Strategy& expressed,
                         std::string_view command) {
  const Workload& wl = report.workload;
  const Estimate& e = plan.estimate;
  std::string o = "#!/bin/sh\n";
  o += "# " + one_line(model.name) + " with " + std::string(engine_title) + ": plan " + plan.id +
       " of dmem's plans for this machine.\n";
  o += "# Made by: " + one_line(command) + "\n#\n";
  o += "# Plan: " + one_line(strategy_summary(plan.strategy)) + "\n";
  const std::string as_run = strategy_summary(expressed);
  if (as_run != strategy_summary(plan.strategy))
    o += "# As " + std::string(engine_title) + " runs it: " + one_line(as_run) + "\n";
  std::string machine = "# Machine: ";
  if (report.hardware.gpus.empty()) machine += "no GPU";
  for (const auto& g : report.hardware.gpus)
    machine += one_line(g.name) + " " + format_bytes(g.vram_free) + " free";
  machine += " · RAM " + format_bytes(report.hardware.ram_available) + " available · " +
             std::to_string(wl.width) + "x" + std::to_string(wl.height) + ", " +
             std::to_string(wl.steps) + " steps";
  o += machine + "\n";
  o += "# dmem's estimate for " + std::string(engine_title) + ": VRAM peak " +
       format_bytes(e.vram_peak_bytes) + ", RAM at load " + format_bytes(e.load_ram_peak_bytes) +
       ", RAM steady " + format_bytes(e.ram_peak_bytes) + "\n";
  for (const auto& n : plan.notes) o += "#   - " + one_line(n) + "\n";
  return o;
}

std::string component_file(const Model& model, const Component& c) {
  const bool flux = model.pipeline_class == "FluxPipeline";
  const bool qwen = model.pipeline_class == "QwenImagePipeline" ||
                    model.pipeline_class == "QwenImageEditPipeline";
  const bool wan = model.pipeline_class == "WanPipeline";
  if (c.role == Role::denoiser) {
    if (wan) return "wan2.1_t2v_14B_bf16.safetensors";
    if (qwen && model.name == "qwen-image") return "qwen_image_bf16.safetensors";
    if (qwen) return "qwen_image_edit_bf16.safetensors";
    if (flux && model.name == "flux1-schnell") return "flux1-schnell.safetensors";
    if (flux) return "flux1-dev.safetensors";
  } else if (c.role == Role::vae) {
    if (flux) return "ae.safetensors";
    if (qwen) return "qwen_image_vae.safetensors";
    if (wan) return "wan_2.1_vae.safetensors";
  } else {
    if (c.class_name == "CLIPTextModel") return "clip_l.safetensors";
    if (c.class_name == "CLIPTextModelWithProjection") return "clip_g.safetensors";
    if (c.class_name == "T5EncoderModel") return "t5xxl_fp16.safetensors";
    if (c.class_name == "UMT5EncoderModel") return "umt5_xxl_fp16.safetensors";
    if (c.class_name.rfind("Qwen2_5_VL", 0) == 0) return "qwen_2.5_vl_7b.safetensors";
  }
  std::string name;
  for (char ch : model.name + "-" + c.name)
    name += std::isalnum(static_cast<unsigned char>(ch)) || ch == '.' || ch == '_' ? ch : '-';
  return name + ".safetensors";
}

std::string gguf_type(const Storage& st) {
  if (!is_quantizer(st, "gguf")) return {};
  for (const auto& [k, v] : st.params)
    if (k == "type") return v;
  return "q8_0";
}

std::string storage_file(const Model& model, const ComponentStrategy& cs) {
  const Component* c = model.find(cs.component);
  if (c == nullptr) return cs.component;
  std::string file = component_file(model, *c);
  const std::string type = gguf_type(cs.storage);
  if (type.empty()) return file;
  file.resize(file.size() - std::string_view(".safetensors").size());
  std::string upper;
  for (char ch : type) upper += static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
  return file + "-" + upper + ".gguf";
}

}  // namespace dmem::detail
