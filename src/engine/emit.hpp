// Internal: emitters. A plan becomes what its engine runs: a Python script for diffusers, the
// strategy JSON for dmem (docs/engines.md).
#pragma once

#include <string>
#include <string_view>

#include "dmem/plan.hpp"

namespace dmem::detail {

/// The plan with this id of `report` (planned for report.options.engine) in the engine's form.
/// `command` is the command line that made it, quoted in the output's header.
[[nodiscard]] Result<std::string> emit_plan(const Model& model, const PlanReport& report,
                                            std::string_view plan_id, std::string_view command);

/// A complete, commented diffusers script that loads the pipeline with `plan` and generates one
/// image.
[[nodiscard]] Result<std::string> emit_diffusers(const Model& model, const PlanReport& report,
                                                 const Plan& plan, std::string_view command);

/// ComfyUI: a shell script with the launch command line, the loader nodes to use and a minimal
/// API-format workflow (FLUX.1 and Qwen-Image), after `dmem convert` for any GGUF file.
[[nodiscard]] Result<std::string> emit_comfyui(const Model& model, const PlanReport& report,
                                               const Plan& plan, std::string_view command);

/// stable-diffusion.cpp: a shell script with the sd-cli command line, after `dmem convert` for
/// any GGUF file.
[[nodiscard]] Result<std::string> emit_sdcpp(const Model& model, const PlanReport& report,
                                             const Plan& plan, std::string_view command);

// Shared by the shell emitters.

/// `s` in single quotes for sh.
[[nodiscard]] std::string sh_quote(std::string_view s);
/// Text for one comment line (line breaks become spaces).
[[nodiscard]] std::string one_line(std::string_view s);
/// "#!/bin/sh" and the comment block: the engine, the command, the plan, the machine, the
/// engine's estimate and the plan's notes.
[[nodiscard]] std::string shell_header(std::string_view engine_title, const Model& model,
                                       const PlanReport& report, const Plan& plan,
                                       const Strategy& expressed, std::string_view command);
/// The single file ComfyUI and sd.cpp load for a component (the repackaged files their docs
/// link: flux1-dev.safetensors, t5xxl_fp16.safetensors, qwen_2.5_vl_7b.safetensors ...).
[[nodiscard]] std::string component_file(const Model& model, const Component& component);
/// The file a component loads from under this storage: its GGUF (named after the type) when
/// quantized to GGUF, else component_file.
[[nodiscard]] std::string storage_file(const Model& model, const ComponentStrategy& cs);
/// The GGUF type of a GGUF storage ("q8_0"); empty otherwise.
[[nodiscard]] std::string gguf_type(const Storage& storage);

}  // namespace dmem::detail
