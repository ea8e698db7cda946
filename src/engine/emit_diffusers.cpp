// The diffusers emitter: a complete Python script (diffusers >= 0.35 API) that loads the pipeline
// the way the plan says and generates one image. The script's phases are the ones the diffusers
// profile costs (docs/engines.md, "The emitted script"); the profile and this file change together.
#include <algorithm>
#include <cctype>
#include <cstdio>

#include "dmem/quantizer.hpp"
#include "dmem/units.hpp"
#include "engine/emit.hpp"
#include "engine/engine_profile.hpp"

namespace dmem::detail {

namespace {

std::string py_str(std::string_view s) {
  std::string out = "\"";
  for (char ch : s) {
    if (ch == '\\' || ch == '"') {
      out += '\\';
      out += ch;
    } else if (ch == '\n') {
      out += "\\n";
    } else if (static_cast<unsigned char>(ch) < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", static_cast<unsigned char>(ch));
      out += buf;
    } else {
      out += ch;
    }
  }
  return out + "\"";
}

// One line of a comment block: newlines in names would end the comment.
std::string comment_text(std::string_view s) {
  std::string out;
  for (char ch : s) out += (ch == '\n' || ch == '\r') ? ' ' : ch;
  return out;
}

std::string repo_id(const Model& m) {
  static const std::pair<const char*, const char*> kRepos[] = {
      {"qwen-image", "Qwen/Qwen-Image"},
      {"qwen-image-edit", "Qwen/Qwen-Image-Edit"},
      {"flux1-dev", "black-forest-labs/FLUX.1-dev"},
      {"flux1-schnell", "black-forest-labs/FLUX.1-schnell"},
      {"sd35-large", "stabilityai/stable-diffusion-3.5-large"},
      {"sdxl", "stabilityai/stable-diffusion-xl-base-1.0"},
      {"wan21-t2v-14b", "Wan-AI/Wan2.1-T2V-14B-Diffusers"},
  };
  if (m.source == "catalog")
    for (const auto& [name, repo] : kRepos)
      if (m.name == name) return repo;
  return m.name;  // a diffusers folder on disk
}

std::string torch_dtype(DType d) {
  switch (d) {
    case DType::f8_e4m3:
      return "torch.float8_e4m3fn";
    case DType::f8_e5m2:
      return "torch.float8_e5m2";
    case DType::f16:
      return "torch.float16";
    case DType::f32:
      return "torch.float32";
    default:
      return "torch.bfloat16";
  }
}

bool is_quant(const Storage& s, std::string_view shortname) {
  return s.kind == StorageKind::quantized &&
         (s.quantizer == shortname || s.quantizer == "dmem.quantizer." + std::string(shortname));
}

std::string param(const Storage& s, std::string_view key) {
  for (const auto& [k, v] : s.params)
    if (k == key) return v;
  return {};
}

bool encoded_first(const Component& c, const ComponentStrategy& cs, bool all_cpu) {
  if (all_cpu || c.role == Role::denoiser || c.role == Role::vae) return false;
  return cs.placement.kind == PlacementKind::dropped || cs.placement.kind == PlacementKind::cpu;
}

// bitsandbytes keyword arguments for a storage (the same for diffusers' and transformers'
// BitsAndBytesConfig).
std::string bnb_kwargs(const Storage& s, bool as_dict) {
  std::vector<std::pair<std::string, std::string>> kv;
  if (is_quant(s, "bnb_int8")) {
    kv = {{"load_in_8bit", "True"}};
  } else {
    kv = {{"load_in_4bit", "True"},
          {"bnb_4bit_quant_type", "\"nf4\""},
          {"bnb_4bit_compute_dtype", "DTYPE"},
          {"bnb_4bit_use_double_quant", param(s, "double_quant") == "true" ? "True" : "False"}};
  }
  std::string out;
  for (const auto& [k, v] : kv) {
    if (!out.empty()) out += ", ";
    out += as_dict ? "\"" + k + "\": " + v : k + "=" + v;
  }
  return as_dict ? "{" + out + "}" : out;
}

struct Script {
  std::string text;
  void line(const std::string& s = {}) { text += s + "\n"; }
};

// PipelineQuantizationConfig for the bitsandbytes components of one pipeline, or "" for none.
std::string quant_config(const Model& m, const std::vector<const ComponentStrategy*>& group,
                         bool& needs_mapping_imports) {
  std::vector<const ComponentStrategy*> q;
  for (const auto* cs : group)
    if (is_quant(cs->storage, "nf4") || is_quant(cs->storage, "bnb_int8")) q.push_back(cs);
  if (q.empty()) return {};
  const std::string first = bnb_kwargs(q.front()->storage, true);
  const bool uniform = std::all_of(q.begin(), q.end(), [&](const ComponentStrategy* cs) {
    return bnb_kwargs(cs->storage, true) == first;
  });
  std::string out = "PipelineQuantizationConfig(\n";
  if (uniform) {
    out += std::string("        quant_backend=\"") +
           (is_quant(q.front()->storage, "bnb_int8") ? "bitsandbytes_8bit" : "bitsandbytes_4bit") +
           "\",\n";
    out += "        quant_kwargs=" + first + ",\n";
    out += "        components_to_quantize=[";
    for (std::size_t i = 0; i < q.size(); ++i) out += (i ? ", " : "") + py_str(q[i]->component);
    out += "],\n    )";
    return out;
  }
  needs_mapping_imports = true;
  out += "        quant_mapping={\n";
  for (const auto* cs : q) {
    const Component* c = m.find(cs->component);
    const bool tf = c != nullptr && c->role != Role::denoiser && c->role != Role::vae;
    out += "            " + py_str(cs->component) + ": " +
           (tf ? "TransformersBitsAndBytesConfig(" : "DiffusersBitsAndBytesConfig(") +
           bnb_kwargs(cs->storage, false) + "),\n";
  }
  out += "        },\n    )";
  return out;
}

std::string offload_args(const Placement& p) {
  std::string a = "onload_device=DEVICE, offload_device=torch.device(\"cpu\"), ";
  if (p.level == OffloadLevel::leaf)
    a += "offload_type=\"leaf_level\", ";
  else
    a +=
        "offload_type=\"block_level\", num_blocks_per_group=" + std::to_string(p.blocks_per_group) +
        ", ";
  a += std::string("use_stream=") + (p.use_stream ? "True" : "False");
  if (p.use_stream && p.record_stream) a += ", record_stream=True";
  // low_cpu_mem_usage=True pins each group as it moves instead of pinning a second copy of
  // every offloaded tensor up front.
  if (p.use_stream)
    a += std::string(", low_cpu_mem_usage=") + (p.park == Tier::pinned ? "False" : "True");
  if (p.park == Tier::disk) a += ", offload_to_disk_path=OFFLOAD_DIR";
  return a;
}

}  // namespace

Result<std::string> emit_diffusers(const Model& model, const PlanReport& report, const Plan& plan,
                                   std::string_view command) {
  const Expressed x = express_diffusers(model, plan.strategy);
  if (!x.ok)
    return Status(Errc::unsupported, "plan " + plan.id + " cannot run in diffusers: " + x.why)
        .with_rule("engine.express")
        .with_hint("plan with --engine diffusers: every plan it lists can be emitted");
  const Strategy& s = x.strategy;
  const bool qwen = model.pipeline_class == "QwenImagePipeline";
  const bool flux = model.pipeline_class == "FluxPipeline";
  const bool video = model.pipeline_class == "WanPipeline";
  const bool edit = model.pipeline_class == "QwenImageEditPipeline";
  bool all_cpu = true;
  for (const auto& cs : s.components) all_cpu = all_cpu && cs.placement.kind == PlacementKind::cpu;
  const bool gpu = !report.hardware.gpus.empty() && !all_cpu;

  std::vector<const ComponentStrategy*> first, rest;
  for (const auto& cs : s.components) {
    const Component* c = model.find(cs.component);
    (c != nullptr && encoded_first(*c, cs, all_cpu) ? first : rest).push_back(&cs);
  }
  bool any_bnb = false, any_cast_tf = false, any_group_tf = false, any_gguf = false,
       any_disk = false, model_offload = false, sequential = false;
  for (const auto& cs : s.components) {
    const Component* c = model.find(cs.component);
    const bool tf = c->role != Role::denoiser && c->role != Role::vae;
    any_bnb = any_bnb || is_quant(cs.storage, "nf4") || is_quant(cs.storage, "bnb_int8");
    any_gguf = any_gguf || is_quant(cs.storage, "gguf");
    any_cast_tf = any_cast_tf || (tf && cs.storage.kind == StorageKind::layerwise_cast);
    any_group_tf = any_group_tf || (tf && cs.placement.kind == PlacementKind::group_offload);
    any_disk = any_disk || (cs.placement.kind == PlacementKind::group_offload &&
                            cs.placement.park == Tier::disk);
    model_offload = model_offload || cs.placement.kind == PlacementKind::model_offload;
    sequential = sequential || cs.placement.kind == PlacementKind::sequential;
  }
  bool mapping = false;
  const std::string qa = quant_config(model, first, mapping);
  const std::string qb = quant_config(model, rest, mapping);
  const Workload& wl = report.workload;
  const Estimate& e = plan.estimate;

  Script o;
  o.line("#!/usr/bin/env python3");
  o.line("# " + comment_text(model.pipeline_class) + " with diffusers: plan " + plan.id +
         " of dmem's plans for this machine.");
  o.line("# Made by: " + comment_text(command));
  o.line("#");
  o.line("# Plan: " + comment_text(strategy_summary(s)));
  std::string machine = "# Machine: ";
  if (report.hardware.gpus.empty()) machine += "no GPU";
  for (const auto& g : report.hardware.gpus)
    machine += comment_text(g.name) + " " + format_bytes(g.vram_free) + " free";
  machine += " · RAM " + format_bytes(report.hardware.ram_available) + " available · " +
             std::to_string(wl.width) + "x" + std::to_string(wl.height) + ", " +
             std::to_string(wl.steps) + " steps";
  o.line(machine);
  o.line("# dmem's estimate for diffusers: VRAM peak " + format_bytes(e.vram_peak_bytes) +
         ", RAM at load " + format_bytes(e.load_ram_peak_bytes) + ", RAM steady " +
         format_bytes(e.ram_peak_bytes) + ", pinned " + format_bytes(e.pinned_bytes) +
         (e.disk_bytes > 0 ? ", disk " + format_bytes(e.disk_bytes) : std::string()));
  for (const auto& n : plan.notes) o.line("#   - " + comment_text(n));
  o.line("#");
  o.line(std::string("# Needs diffusers >= 0.35, transformers, accelerate and torch") +
         (any_bnb ? ", bitsandbytes" : "") + (any_gguf ? ", gguf" : "") + ".");
  o.line("import gc");
  o.line();
  o.line("import torch");
  o.line("from diffusers import DiffusionPipeline");
  if (!qa.empty() || !qb.empty()) o.line("from diffusers import PipelineQuantizationConfig");
  if (mapping) {
    o.line("from diffusers import BitsAndBytesConfig as DiffusersBitsAndBytesConfig");
    o.line("from transformers import BitsAndBytesConfig as TransformersBitsAndBytesConfig");
  }
  if (any_gguf) {
    o.line("from diffusers import GGUFQuantizationConfig");
    for (const auto& cs : s.components)
      if (is_quant(cs.storage, "gguf"))
        o.line("from diffusers import " + model.find(cs.component)->class_name);
  }
  if (any_cast_tf && any_group_tf)
    o.line("from diffusers.hooks import apply_group_offloading, apply_layerwise_casting");
  else if (any_cast_tf)
    o.line("from diffusers.hooks import apply_layerwise_casting");
  else if (any_group_tf)
    o.line("from diffusers.hooks import apply_group_offloading");
  if (video) o.line("from diffusers.utils import export_to_video");
  o.line();
  o.line("MODEL_ID = " + py_str(repo_id(model)));
  o.line(
      "PROMPT = \"A coffee shop entrance with a chalkboard sign that reads 'dmem', warm light\"");
  if (qwen) o.line("NEGATIVE_PROMPT = \" \"  # Qwen-Image's true CFG needs a negative prompt");
  o.line("WIDTH, HEIGHT, STEPS = " + std::to_string(wl.width) + ", " + std::to_string(wl.height) +
         ", " + std::to_string(wl.steps));
  if (video) o.line("FRAMES = " + std::to_string(wl.frames));
  o.line(std::string("DEVICE = torch.device(\"") + (gpu ? "cuda" : "cpu") + "\")");
  DType compute = DType::bf16;
  for (const auto& cs : s.components) compute = cs.storage.compute_dtype;
  o.line("DTYPE = " + torch_dtype(compute));
  if (any_disk) {
    // diffusers reuses group files it finds in the folder (named by group, not by model): one
    // folder per model keeps another model's weights from being loaded.
    std::string folder;
    for (char ch : model.name) folder += std::isalnum(static_cast<unsigned char>(ch)) ? ch : '-';
    const std::string base =
        report.hardware.cache_dir.empty() ? std::string("dmem-offload") : report.hardware.cache_dir;
    o.line("# offload_to_disk_path writes every group here and reuses the files it finds: one");
    o.line("# folder per model (delete it after changing the model's weights).");
    o.line("OFFLOAD_DIR = " + py_str(base + "/diffusers-offload/" + folder));
  }
  for (const auto& cs : s.components)
    if (is_quant(cs.storage, "gguf"))
      o.line("GGUF_FILE = \"" + cs.component + "-" + param(cs.storage, "type") +
             ".gguf\"  # set: a GGUF of the " + cs.component + " (diffusers cannot make one)");
  o.line();
  o.line();
  o.line("def free():");
  o.line("    \"\"\"Returns freed weights to the system (modules hold reference cycles).\"\"\"");
  o.line("    gc.collect()");
  o.line("    if torch.cuda.is_available():");
  o.line("        torch.cuda.empty_cache()");
  o.line();
  o.line();

  auto cast_call = [&](const ComponentStrategy& cs, const std::string& obj) {
    const Component* c = model.find(cs.component);
    const bool tf = c->role != Role::denoiser && c->role != Role::vae;
    o.line("# " + cs.component + ": weights stored in " +
           std::string(dtype_name(cs.storage.cast_dtype)) +
           ", each layer upcast to DTYPE as it runs (norms and embeddings stay as they are).");
    const bool t5 = c->class_name == "T5EncoderModel" || c->class_name == "UMT5EncoderModel";
    if (t5) {
      // T5's feed-forward casts its input to wo's dtype before any hook runs: wo keeps its dtype
      // (dmem's cast skips it too, as transformers keeps it in fp32 for the same reason).
      o.line("apply_layerwise_casting(");
      o.line("    " + obj + ", storage_dtype=" + torch_dtype(cs.storage.cast_dtype) +
             ", compute_dtype=DTYPE,");
      o.line(
          R"(    skip_modules_pattern=("pos_embed", "patch_embed", "norm", "^proj_in$", "^proj_out$", r"\.wo$"),)");
      o.line(")");
    } else if (tf)
      o.line("apply_layerwise_casting(" + obj +
             ", storage_dtype=" + torch_dtype(cs.storage.cast_dtype) + ", compute_dtype=DTYPE)");
    else
      o.line(obj + ".enable_layerwise_casting(storage_dtype=" + torch_dtype(cs.storage.cast_dtype) +
             ", compute_dtype=DTYPE)");
  };
  // Whether a pipeline group loads straight to the GPU (device_map="cuda"): every component in
  // it resident and neither cast nor GGUF (those are built on the CPU first).
  auto direct = [&](const std::vector<const ComponentStrategy*>& g) {
    if (!gpu) return false;
    for (const auto* cs : g) {
      const bool home = cs->placement.kind == PlacementKind::resident ||
                        cs->placement.kind == PlacementKind::dropped;
      if (!home || cs->storage.kind == StorageKind::layerwise_cast || is_quant(cs->storage, "gguf"))
        return false;
    }
    return true;
  };

  // ---- phase 1: encode -------------------------------------------------------------------
  const bool encode_first = !first.empty();
  if (encode_first) {
    const bool enc_gpu = first.front()->placement.kind == PlacementKind::dropped;
    o.line("# ---- Phase 1: encode the prompt, then free the text encoder(s) ----");
    o.line(std::string("# They run ") + (enc_gpu ? "alone on the GPU" : "on the CPU") +
           " and are freed before the denoiser loads: the two never share memory.");
    std::string skip;
    for (const auto* cs : rest) skip += cs->component + "=None, ";
    const bool d = direct(first);
    o.line("encoder = DiffusionPipeline.from_pretrained(");
    o.line("    MODEL_ID,");
    o.line("    " + skip.substr(0, skip.size() - 2) + ",  # only the encoders load here");
    o.line("    torch_dtype=DTYPE,");
    if (!qa.empty()) o.line("    quantization_config=" + qa + ",");
    o.line("    low_cpu_mem_usage=True,");
    if (d) o.line("    device_map=\"cuda\",  # straight to the GPU, never whole in RAM");
    o.line(")");
    for (const auto* cs : first)
      if (cs->storage.kind == StorageKind::layerwise_cast)
        cast_call(*cs, "encoder." + cs->component);
    if (enc_gpu && !d) o.line("encoder.to(DEVICE)");
    const std::string dev = enc_gpu ? "DEVICE" : "torch.device(\"cpu\")";
    o.line("with torch.no_grad():");
    if (qwen) {
      o.line(
          "    prompt_embeds, prompt_embeds_mask = encoder.encode_prompt(prompt=PROMPT, device=" +
          dev + ")");
      o.line("    negative_prompt_embeds, negative_prompt_embeds_mask = encoder.encode_prompt(");
      o.line("        prompt=NEGATIVE_PROMPT, device=" + dev + ")");
    } else if (flux) {
      o.line("    prompt_embeds, pooled_prompt_embeds, _ = encoder.encode_prompt(");
      o.line("        prompt=PROMPT, prompt_2=None, device=" + dev + ")");
    }
    // encode_prompt returns the embeddings in the encoder's dtype (fp8 once it is cast) and no
    // mask (None) when it would be all ones; the denoiser wants DTYPE on DEVICE.
    o.line(std::string("# The embeddings (a few MB) ") + (enc_gpu ? "stay" : "move to the GPU") +
           ", in the denoiser's dtype (encode_prompt returns the encoder's).");
    if (qwen) {
      o.line("prompt_embeds = prompt_embeds.to(DEVICE, DTYPE)");
      o.line("negative_prompt_embeds = negative_prompt_embeds.to(DEVICE, DTYPE)");
      o.line("prompt_embeds_mask, negative_prompt_embeds_mask = [");
      o.line(
          "    None if t is None else t.to(DEVICE) for t in (prompt_embeds_mask, "
          "negative_prompt_embeds_mask)");
      o.line("]");
    } else if (flux) {
      o.line("prompt_embeds = prompt_embeds.to(DEVICE, DTYPE)");
      o.line("pooled_prompt_embeds = pooled_prompt_embeds.to(DEVICE, DTYPE)");
    }
    o.line("del encoder");
    o.line("free()");
    o.line();
  }

  // ---- phase 2: the denoiser and the VAE --------------------------------------------------
  o.line(std::string("# ---- ") + (encode_first ? "Phase 2: " : "") +
         "load the pipeline the way the plan places it ----");
  for (const auto& cs : s.components)
    if (is_quant(cs.storage, "gguf")) {
      const std::string& cls = model.find(cs.component)->class_name;
      o.line("# " + cs.component + ": a GGUF file, read packed and dequantized per layer.");
      o.line(cs.component + " = " + cls + ".from_single_file(");
      o.line("    GGUF_FILE,");
      o.line("    quantization_config=GGUFQuantizationConfig(compute_dtype=DTYPE),");
      o.line("    config=MODEL_ID,");
      o.line("    subfolder=" + py_str(cs.component) + ",");
      o.line("    torch_dtype=DTYPE,");
      o.line(")");
    }
  const bool d = direct(rest);
  o.line("pipe = DiffusionPipeline.from_pretrained(");
  o.line("    MODEL_ID,");
  for (const auto* cs : first) o.line("    " + cs->component + "=None,  # encoded in phase 1");
  for (const auto& cs : s.components)
    if (is_quant(cs.storage, "gguf")) o.line("    " + cs.component + "=" + cs.component + ",");
  o.line("    torch_dtype=DTYPE,");
  if (!qb.empty()) o.line("    quantization_config=" + qb + ",");
  o.line("    low_cpu_mem_usage=True,  # weights fill an empty model: no second copy in RAM");
  if (d) o.line("    device_map=\"cuda\",  # straight to the GPU, never whole in RAM");
  o.line(")");
  for (const auto* cs : rest)
    if (cs->storage.kind == StorageKind::layerwise_cast) cast_call(*cs, "pipe." + cs->component);

  if (model_offload) {
    o.line("# Each component moves to the GPU whole for its phase and back to RAM after it.");
    o.line("pipe.enable_model_cpu_offload()");
  } else if (sequential) {
    o.line("# Every layer moves to the GPU just before it runs (slow; no streams).");
    o.line("pipe.enable_sequential_cpu_offload()");
  } else if (gpu && !d) {
    for (const auto* cs : rest) {
      const Component* c = model.find(cs->component);
      const bool tf = c->role != Role::denoiser && c->role != Role::vae;
      const Placement& p = cs->placement;
      if (p.kind == PlacementKind::resident) {
        o.line("pipe." + cs->component + ".to(DEVICE)");
      } else if (p.kind == PlacementKind::group_offload) {
        o.line(
            "# " + cs->component + ": group offloading" +
            (p.use_stream ? ", the next group copied on a side stream while this one runs" : "") +
            (p.park == Tier::disk ? "; groups parked on disk" : "") + ".");
        if (tf)
          o.line("apply_group_offloading(pipe." + cs->component + ", " + offload_args(p) + ")");
        else
          o.line("pipe." + cs->component + ".enable_group_offload(" + offload_args(p) + ")");
      }
    }
  }
  if (s.vae_tiling) {
    o.line("# Decode in tiles: bounds the VAE's activations by the tile size.");
    o.line("pipe.vae.enable_tiling()");
  }
  if (s.vae_slicing) o.line("pipe.vae.enable_slicing()");
  o.line();
  o.line("# ---- generate ----");
  std::string call = "result = pipe(\n";
  if (encode_first && qwen)
    call +=
        "    prompt_embeds=prompt_embeds,\n    prompt_embeds_mask=prompt_embeds_mask,\n"
        "    negative_prompt_embeds=negative_prompt_embeds,\n"
        "    negative_prompt_embeds_mask=negative_prompt_embeds_mask,\n";
  else if (encode_first && flux)
    call += "    prompt_embeds=prompt_embeds,\n    pooled_prompt_embeds=pooled_prompt_embeds,\n";
  else if (qwen)
    call += "    prompt=PROMPT,\n    negative_prompt=NEGATIVE_PROMPT,\n";
  else
    call += "    prompt=PROMPT,\n";
  if (qwen) call += "    true_cfg_scale=4.0,\n";
  if (edit) call += "    image=None,  # set: the image to edit (a PIL image)\n";
  if (video) call += "    num_frames=FRAMES,\n";
  call +=
      "    width=WIDTH,\n    height=HEIGHT,\n    num_inference_steps=STEPS,\n"
      "    generator=torch.Generator(\"cpu\").manual_seed(0),\n)";
  o.line(call);
  if (video) {
    o.line("export_to_video(result.frames[0], \"dmem-plan-" + plan.id + ".mp4\", fps=16)");
  } else {
    o.line("result.images[0].save(\"dmem-plan-" + plan.id + ".png\")");
  }
  return o.text;
}

}  // namespace dmem::detail
