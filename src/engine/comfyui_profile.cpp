// The ComfyUI profile: what ComfyUI (its launch flags, the core loader nodes and the
// ComfyUI-GGUF loaders) can express, and the memory its model manager uses doing it.
// Facts, sources and which figures are assumptions: docs/engines.md, "ComfyUI".
#include <algorithm>

#include "dmem/quantizer.hpp"
#include "dmem/units.hpp"
#include "engine/engine_profile.hpp"

namespace dmem::detail {

namespace {

constexpr std::uint64_t kGiB = 1ull << 30;
// Python, PyTorch, the CUDA libraries and ComfyUI's server beside dmem's host reserve (an
// assumption, as for diffusers, until a calibration run measures it).
constexpr std::uint64_t kComfyHostBytes = 2 * kGiB;
// PyTorch's caching allocator and library kernels (assumption) plus the VRAM ComfyUI keeps free
// for other programs on Linux (EXTRA_RESERVED_VRAM = 400 MiB in comfy/model_management.py).
constexpr std::uint64_t kComfyVramBytes = kGiB / 2 + 400ull * 1024 * 1024;

Expressed refuse(std::string component, std::string why) {
  Expressed e;
  e.component = std::move(component);
  e.why = std::move(why);
  return e;
}

bool is_fp8_cast(const Storage& s) {
  return s.kind == StorageKind::layerwise_cast &&
         (s.cast_dtype == DType::f8_e4m3 || s.cast_dtype == DType::f8_e5m2);
}

// Whether ComfyUI can store this component this way (a loader option or a launch flag).
std::string storage_refusal(const Component& c, const Storage& st) {
  const bool den = c.role == Role::denoiser, vae = c.role == Role::vae;
  if (st.kind == StorageKind::layerwise_cast) {
    if (is_fp8_cast(st) && vae)
      return "ComfyUI stores the VAE in fp32, bf16 or fp16 only (--fp32-vae, --bf16-vae, "
             "--fp16-vae)";
    return {};
  }
  if (st.kind != StorageKind::quantized) return {};
  if (is_quantizer(st, "gguf")) {
    if (vae) return "the ComfyUI-GGUF loaders read diffusion models and text encoders, not VAEs";
    return {};
  }
  if (is_quantizer(st, "fp8")) {
    if (den) return {};  // UNETLoader weight_dtype fp8_e4m3fn_fast: fp8 matrix multiplication
    return "only the diffusion-model loader has fp8 compute (UNETLoader fp8_e4m3fn_fast); "
           "--fp8_e4m3fn-text-enc is the nearest";
  }
  const QuantizerCaps* caps = storage_caps(st);
  return "ComfyUI has no loader for " + (caps != nullptr ? caps->display : st.quantizer) +
         " (bitsandbytes is not in its core); GGUF through ComfyUI-GGUF is the nearest";
}

Placement pageable(PlacementKind kind, std::int32_t gpu) {
  Placement p;
  p.kind = kind;
  p.park = Tier::pageable;
  p.use_stream = false;
  p.gpu = gpu;
  return p;
}

}  // namespace

ComfyMode comfy_mode(const Model& model, const Strategy& s) {
  bool all_cpu = true, offloaded = false;
  PlacementKind den = PlacementKind::resident;
  for (const auto& cs : s.components) {
    all_cpu = all_cpu && cs.placement.kind == PlacementKind::cpu;
    const Component* c = model.find(cs.component);
    if (c != nullptr && c->role == Role::denoiser) den = cs.placement.kind;
    offloaded = offloaded || cs.placement.kind == PlacementKind::model_offload;
  }
  if (all_cpu) return ComfyMode::cpu;
  if (den == PlacementKind::group_offload) return ComfyMode::novram;
  if (den == PlacementKind::partial) return ComfyMode::lowvram;
  if (den == PlacementKind::resident && !offloaded) return ComfyMode::gpu_only;
  return ComfyMode::normal;
}

Expressed express_comfyui(const Model& model, const Strategy& strategy) {
  Expressed out;
  out.strategy = strategy;
  Strategy& s = out.strategy;
  std::string unknown;
  if (!list_all_components(model, s, unknown))
    return refuse(unknown, "the model has no component '" + unknown + "'");

  bool all_cpu = true;
  for (const auto& cs : s.components) all_cpu = all_cpu && cs.placement.kind == PlacementKind::cpu;
  // Storage: a loader option (UNETLoader weight_dtype, the GGUF loaders) or a launch flag.
  const Storage* te_cast = nullptr;
  for (const auto& cs : s.components) {
    const Component& c = *model.find(cs.component);
    if (std::string why = storage_refusal(c, cs.storage); !why.empty())
      return refuse(cs.component, std::move(why));
    if (c.role != Role::denoiser && c.role != Role::vae &&
        cs.storage.kind == StorageKind::layerwise_cast) {
      if (te_cast != nullptr && te_cast->cast_dtype != cs.storage.cast_dtype)
        return refuse(cs.component, "one --*-text-enc flag stores every text encoder alike");
      te_cast = &cs.storage;
    }
  }
  // --fp8_e4m3fn-text-enc (and its kin) applies to every text encoder loaded from safetensors.
  if (te_cast != nullptr) {
    const Storage cast = *te_cast;
    for (auto& cs : s.components) {
      const Component& c = *model.find(cs.component);
      if (c.role == Role::denoiser || c.role == Role::vae) continue;
      if (cs.storage.kind == StorageKind::native) {
        const DType compute = cs.storage.compute_dtype;
        cs.storage = cast;
        cs.storage.compute_dtype = compute;
      }
    }
  }
  if (all_cpu) {
    out.ok = true;  // --cpu
    return out;
  }

  // The denoiser's placement picks ComfyUI's memory mode.
  PlacementKind den = PlacementKind::resident;
  for (auto& cs : s.components) {
    const Component& c = *model.find(cs.component);
    if (c.role != Role::denoiser) continue;
    Placement& p = cs.placement;
    switch (p.kind) {
      case PlacementKind::resident:
        break;
      case PlacementKind::model_offload:
        // --disable-smart-memory: back to RAM after each use.
        p = pageable(PlacementKind::model_offload, p.gpu);
        break;
      case PlacementKind::partial:
        // ComfyUI's automatic lowvram: the modules that fit stay, the rest are copied per layer
        // from ordinary RAM, on a side stream with --async-offload.
        p.park = Tier::pageable;
        p.use_stream = true;
        p.record_stream = false;
        p.prefetch = 1;
        p.level = OffloadLevel::block;
        p.blocks_per_group = 1;
        break;
      case PlacementKind::group_offload:
      case PlacementKind::sequential: {
        // --novram: every weight copied just before its layer runs.
        const std::int32_t gpu = p.gpu;
        p = pageable(PlacementKind::group_offload, gpu);
        p.level = OffloadLevel::leaf;
        p.use_stream = true;
        p.prefetch = 1;
        break;
      }
      case PlacementKind::disk:
        return refuse(cs.component,
                      "ComfyUI keeps offloaded weights in RAM; it cannot stream them from disk");
      case PlacementKind::cpu:
        return refuse(cs.component,
                      "ComfyUI runs the diffusion model on the CPU only with --cpu "
                      "(everything on the CPU)");
      case PlacementKind::dropped:
        return refuse(cs.component, "the diffusion model is needed until the last step");
    }
    den = p.kind;
  }
  int te_cpu = 0, te_gpu = 0;
  for (const auto& cs : s.components) {
    const Role r = model.find(cs.component)->role;
    if (r != Role::denoiser && r != Role::vae)
      (cs.placement.kind == PlacementKind::cpu ? te_cpu : te_gpu)++;
  }
  if (te_cpu > 0 && te_gpu > 0)
    return refuse("", "one CLIP loader node loads every text encoder on one device");
  bool all_resident = den == PlacementKind::resident;
  for (const auto& cs : s.components) {
    const PlacementKind k = cs.placement.kind;
    all_resident = all_resident && (k == PlacementKind::resident || k == PlacementKind::cpu);
  }
  for (auto& cs : s.components) {
    const Component& c = *model.find(cs.component);
    if (c.role == Role::denoiser) continue;
    Placement& p = cs.placement;
    const bool te = c.role != Role::vae;
    switch (p.kind) {
      case PlacementKind::cpu:
        break;  // CLIPLoader device=cpu, --cpu-vae
      case PlacementKind::resident:
        if (all_resident) break;  // --gpu-only
        [[fallthrough]];
      case PlacementKind::dropped:
      case PlacementKind::model_offload:
        // ComfyUI's model manager moves a model to the GPU for its node and back to RAM when the
        // room is needed; its cache keeps the model in RAM (it is not freed like dmem's drop).
        if (!te && p.kind == PlacementKind::dropped)
          return refuse(cs.component, "ComfyUI keeps the VAE for the decode");
        p = pageable(PlacementKind::model_offload, p.gpu);
        break;
      default:
        return refuse(cs.component,
                      "ComfyUI loads a text encoder or VAE whole (on the GPU, in "
                      "RAM between uses, or on the CPU)");
    }
    // The GGUF text-encoder loaders have no device input: on the GPU unless --novram.
    if (te && p.kind == PlacementKind::cpu && is_quantizer(cs.storage, "gguf") &&
        den != PlacementKind::group_offload)
      return refuse(cs.component,
                    "CLIPLoaderGGUF has no device input (only --novram encodes "
                    "on the CPU)");
    // Under --novram, text_encoder_device() is the CPU.
    if (te && den == PlacementKind::group_offload && p.kind != PlacementKind::cpu)
      return refuse(cs.component,
                    "under --novram ComfyUI encodes the prompt on the CPU (text_encoder_device)");
  }
  out.ok = true;
  return out;
}

void adjust_comfyui(ModelProfile& profile, const Strategy& s, const Hardware& hw, Estimate& e,
                    std::vector<std::string>* notes) {
  const bool gpu = !hw.gpus.empty();
  const ComfyMode mode =
      profile.model != nullptr ? comfy_mode(*profile.model, s) : ComfyMode::normal;
  for (auto& ph : e.phases) {
    if (ph.phase != Phase::load) {
      ph.ram_pageable += kComfyHostBytes;
      ph.ram_peak += kComfyHostBytes;
    }
    if (gpu && ph.vram_peak > 0 && mode != ComfyMode::cpu) {
      ph.vram_reserve += kComfyVramBytes;
      ph.vram_peak += kComfyVramBytes;
    }
  }
  // Load: the loader nodes run before anything reaches the GPU, and each model lands in RAM in
  // its stored form (safetensors are memory-mapped by default, so a cast model's source pages are
  // file-backed, not counted). Under --gpu-only each model moves to the GPU as it loads, so only
  // the largest is whole in RAM.
  std::uint64_t sum = 0, largest = 0;
  for (const auto& cs : s.components) {
    ComponentProfile* p = profile.find(cs.component);
    if (p == nullptr) continue;
    const std::uint64_t stored = stored_sizes(*p, storage_caps(cs.storage)).total;
    sum += stored;
    largest = std::max(largest, stored);
  }
  const std::uint64_t models = mode == ComfyMode::gpu_only ? largest : sum;
  const std::uint64_t load_ram = kHostReserveGpuBytes + kComfyHostBytes + models;
  for (auto& ph : e.phases)
    if (ph.phase == Phase::load) {
      ph.ram_pageable = load_ram > ph.ram_pinned ? load_ram - ph.ram_pinned : 0;
      ph.ram_peak = std::max(load_ram, ph.ram_pinned);
    }
  refresh_totals(e);
  if (notes == nullptr) return;
  for (const auto& cs : s.components) {
    const Component* c = profile.model != nullptr ? profile.model->find(cs.component) : nullptr;
    if (c != nullptr && c->role != Role::denoiser && c->role != Role::vae &&
        cs.placement.kind == PlacementKind::model_offload)
      notes->push_back(cs.component +
                       ": ComfyUI moves it back to RAM after encoding and keeps it there (its "
                       "model cache), where dmem would free it");
  }
  if (mode == ComfyMode::lowvram)
    notes->push_back(
        "ComfyUI chooses how much of the denoiser stays on the GPU from the free VRAM; "
        "--reserve-vram keeps it near this plan's split");
  notes->push_back("ComfyUI load RAM " + format_bytes(e.load_ram_peak_bytes) +
                   (mode == ComfyMode::gpu_only
                        ? std::string(" (each model moves to the GPU as it loads)")
                        : std::string(" (every loader reads its model into RAM before "
                                      "sampling starts)")));
}

}  // namespace dmem::detail
