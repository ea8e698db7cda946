// The diffusers profile: what diffusers (>= 0.35) can express and the memory it uses doing it.
// Facts and sources: docs/engines.md, "diffusers".
#include <algorithm>
#include <string_view>

#include "dmem/quantizer.hpp"
#include "dmem/units.hpp"
#include "engine/engine_profile.hpp"

namespace dmem::detail {

namespace {

constexpr std::uint64_t kGiB = 1ull << 30;
// Python, PyTorch and the CUDA libraries resident in the process beside dmem's host reserve
// (an assumption until a calibration run measures it: docs/engines.md).
constexpr std::uint64_t kTorchHostBytes = 2 * kGiB;
// PyTorch's caching allocator keeps freed blocks and loads cuBLAS/cuDNN kernels on the device.
constexpr std::uint64_t kTorchVramBytes = kGiB / 2;

std::uint32_t bit(Phase p) {
  return 1u << static_cast<unsigned>(p);
}

bool is_bnb(const Storage& s) {
  return s.kind == StorageKind::quantized &&
         (s.quantizer == "dmem.quantizer.nf4" || s.quantizer == "nf4" ||
          s.quantizer == "dmem.quantizer.bnb_int8" || s.quantizer == "bnb_int8");
}

bool is_gguf(const Storage& s) {
  return s.kind == StorageKind::quantized &&
         (s.quantizer == "dmem.quantizer.gguf" || s.quantizer == "gguf");
}

// Components built by transformers (text encoders) take the functional hooks and have no
// diffusers block discovery; diffusers' own models (denoiser, VAE) take the ModelMixin methods.
bool from_transformers(const Component& c) {
  return c.role == Role::text_encoder || c.role == Role::other;
}

bool rests_in_ram(const Placement& p) {
  switch (p.kind) {
    case PlacementKind::model_offload:
    case PlacementKind::sequential:
    case PlacementKind::cpu:
      return true;
    case PlacementKind::group_offload:
      return p.park != Tier::disk;
    default:
      return false;
  }
}

bool pinned_copy(const Placement& p) {
  // use_stream=True without low_cpu_mem_usage pins a second copy of every offloaded tensor up
  // front (diffusers hooks/group_offloading.py); park: pageable is low_cpu_mem_usage=True.
  return p.kind == PlacementKind::group_offload && p.use_stream && p.park == Tier::pinned;
}

Expressed refuse(std::string component, std::string why) {
  Expressed e;
  e.component = std::move(component);
  e.why = std::move(why);
  return e;
}

}  // namespace

bool diffusers_encodes_separately(const Model& model) noexcept {
  // The pipelines whose encode_prompt the emitter knows (outputs and the call's keywords).
  return model.pipeline_class == "QwenImagePipeline" || model.pipeline_class == "FluxPipeline";
}

Expressed express_diffusers(const Model& model, const Strategy& strategy) {
  Expressed out;
  out.strategy = strategy;
  Strategy& s = out.strategy;
  // Every component listed, in model order: the emitter names each one.
  std::vector<ComponentStrategy> all;
  for (const auto& c : model.components) {
    const ComponentStrategy* cs = strategy.find(c.name);
    ComponentStrategy x = cs != nullptr ? *cs : ComponentStrategy{};
    x.component = c.name;
    all.push_back(std::move(x));
  }
  for (const auto& cs : strategy.components)
    if (model.find(cs.component) == nullptr)
      return refuse(cs.component, "the model has no component '" + cs.component + "'");
  s.components = std::move(all);

  bool all_cpu = true;
  for (const auto& cs : s.components) all_cpu = all_cpu && cs.placement.kind == PlacementKind::cpu;
  bool model_offload = false, sequential = false;
  for (auto& cs : s.components) {
    const Component& c = *model.find(cs.component);
    Placement& p = cs.placement;
    const Storage& st = cs.storage;
    if (st.kind == StorageKind::quantized && !is_bnb(st)) {
      if (!is_gguf(st))
        return refuse(cs.component,
                      "diffusers runs no fp8-GEMM storage in this profile (torchao's float8 is not "
                      "mapped yet); the fp8 layerwise cast is the nearest");
      if (c.role != Role::denoiser)
        return refuse(cs.component,
                      "diffusers reads GGUF only for its own models (from_single_file with "
                      "GGUFQuantizationConfig); a transformers text encoder cannot load one");
    }
    switch (p.kind) {
      case PlacementKind::partial:
        return refuse(cs.component,
                      "diffusers has no partial residency: group offloading moves every block");
      case PlacementKind::dropped:
        if (c.role == Role::denoiser || c.role == Role::vae)
          return refuse(cs.component, "the script frees only text encoders after their phase");
        if (!diffusers_encodes_separately(model))
          return refuse(cs.component,
                        "the emitter has no separate encode phase for " + model.pipeline_class);
        break;
      case PlacementKind::cpu:
        if (all_cpu) break;
        if (c.role == Role::denoiser || c.role == Role::vae)
          return refuse(cs.component,
                        "a pipeline that computes on the GPU keeps its denoiser and VAE there");
        if (!diffusers_encodes_separately(model))
          return refuse(cs.component,
                        "the emitter has no separate encode phase for " + model.pipeline_class);
        break;
      case PlacementKind::disk:
        // offload_to_disk_path: group offloading that parks every group in files of its own.
        p.kind = PlacementKind::group_offload;
        p.park = Tier::disk;
        p.use_stream = true;
        [[fallthrough]];
      case PlacementKind::group_offload:
        // transformers models have no diffusers block discovery: leaf level there.
        if (from_transformers(c) || c.role == Role::vae) p.level = OffloadLevel::leaf;
        if (p.level == OffloadLevel::leaf) p.blocks_per_group = 1;
        p.prefetch = 1;  // diffusers prefetches the next group only
        if (!p.use_stream) p.record_stream = false;
        break;
      case PlacementKind::model_offload:
        p.park = Tier::pageable;  // accelerate's hook moves the module with .to()
        p.use_stream = false;
        model_offload = true;
        break;
      case PlacementKind::sequential:
        p.park = Tier::pageable;
        p.use_stream = false;
        p.level = OffloadLevel::leaf;
        sequential = true;
        break;
      case PlacementKind::resident:
        break;
    }
  }
  // The encode phase calls encode_prompt once, on one device.
  bool enc_gpu = false, enc_cpu = false;
  for (const auto& cs : s.components) {
    enc_gpu = enc_gpu || cs.placement.kind == PlacementKind::dropped;
    enc_cpu = enc_cpu || (cs.placement.kind == PlacementKind::cpu && !all_cpu);
  }
  if (enc_gpu && enc_cpu)
    return refuse("", "the encode phase runs every text encoder on one device (GPU or CPU)");
  // enable_model_cpu_offload / enable_sequential_cpu_offload hook every component the pipeline
  // holds: the resident ones are moved as well (text encoders freed earlier are not held).
  if (model_offload != sequential)
    for (auto& cs : s.components)
      if (cs.placement.kind == PlacementKind::resident) {
        const Placement keep = cs.placement;
        cs.placement = Placement{};
        cs.placement.kind =
            model_offload ? PlacementKind::model_offload : PlacementKind::sequential;
        cs.placement.park = Tier::pageable;
        cs.placement.use_stream = false;
        cs.placement.gpu = keep.gpu;
        if (sequential) cs.placement.level = OffloadLevel::leaf;
      }
  out.ok = true;
  return out;
}

std::uint64_t bnb_unquantized_extra(ModelProfile& profile, const ComponentStrategy& cs) {
  if (!is_bnb(cs.storage)) return 0;
  ComponentProfile* p = profile.find(cs.component);
  if (p == nullptr) return 0;
  const QuantizerCaps* caps = storage_caps(cs.storage);
  if (caps == nullptr) return 0;
  const Component& c = *p->component;
  const bool t5 = c.class_name == "T5EncoderModel" || c.class_name == "UMT5EncoderModel";
  std::uint64_t extra = 0;
  for (std::size_t i = 0; i < c.tensors.size(); ++i) {
    const TensorInfo& t = c.tensors[i];
    const std::string_view n = t.name;
    const bool linear = (p->tensor_flags[i] & kLinearWeight) != 0;
    if (!linear) continue;
    const std::uint64_t packed = quantized_bytes(*caps, t, true);
    // transformers keeps T5's `wo` in fp32 under bitsandbytes (_keep_in_fp32_modules); dmem's
    // stored size already counts it that way (estimator_profile.cpp), so it adds nothing here.
    if (t5 && n.find(".wo.") != std::string_view::npos) continue;
    // transformers never converts the output head (get_keys_to_not_convert).
    if (n.rfind("lm_head.", 0) == 0) extra += t.nbytes > packed ? t.nbytes - packed : 0;
  }
  return extra;
}

std::uint64_t diffusers_load_ram(ModelProfile& profile, const Strategy& s,
                                 const DiffusersLoad& load) {
  auto stored = [&](const ComponentStrategy& cs) {
    ComponentProfile* p = profile.find(cs.component);
    if (p == nullptr) return std::uint64_t{0};
    return stored_sizes(*p, storage_caps(cs.storage)).total + bnb_unquantized_extra(profile, cs);
  };
  auto native = [&](const ComponentStrategy& cs) {
    ComponentProfile* p = profile.find(cs.component);
    return p == nullptr ? std::uint64_t{0} : p->summary.bytes;
  };
  auto encoded_first = [&](const ComponentStrategy& cs) {
    return cs.placement.kind == PlacementKind::dropped ||
           (cs.placement.kind == PlacementKind::cpu && profile.find(cs.component) != nullptr &&
            profile.find(cs.component)->component->role != Role::denoiser &&
            profile.find(cs.component)->component->role != Role::vae);
  };
  // Without low_cpu_mem_usage a model is first built with random weights, then overwritten.
  const auto random_init = [&](const ComponentStrategy& cs) {
    return load.low_cpu_mem_usage ? std::uint64_t{0} : native(cs);
  };

  // What a component holds in RAM when it loads on the CPU: a cast component arrives in its
  // dtype and is cast afterwards; the others arrive in their stored form (bitsandbytes
  // quantizes tensor by tensor as it loads, GGUF is read packed).
  auto on_cpu = [&](const ComponentStrategy& cs) {
    return (cs.storage.kind == StorageKind::layerwise_cast ? native(cs) : stored(cs)) +
           random_init(cs);
  };
  // One pipeline per phase group (docs/engines.md, "The emitted script"): device_map="cuda"
  // when all its components are resident and uncast, else everything loads into RAM first.
  auto group_ram = [&](bool first) {
    bool direct = load.device_map;
    for (const auto& cs : s.components) {
      if (encoded_first(cs) != first) continue;
      const bool gpu_home = cs.placement.kind == PlacementKind::resident ||
                            cs.placement.kind == PlacementKind::dropped;
      direct = direct && gpu_home && cs.storage.kind != StorageKind::layerwise_cast &&
               !is_gguf(cs.storage);
    }
    std::uint64_t sum = 0, transient = 0;
    for (const auto& cs : s.components) {
      if (encoded_first(cs) != first) continue;
      if (direct)
        transient = std::max(transient, random_init(cs));
      else
        sum += on_cpu(cs);
      // enable_group_offload(use_stream=True) pins a copy of every offloaded tensor.
      if (pinned_copy(cs.placement)) sum += stored(cs);
    }
    return sum + transient;
  };
  const std::uint64_t a = group_ram(true), b = group_ram(false);
  return kHostReserveGpuBytes + kTorchHostBytes + std::max(a, b);
}

void adjust_diffusers(ModelProfile& profile, const Strategy& s, const Hardware& hw, Estimate& e,
                      std::vector<std::string>* notes) {
  const bool gpu = !hw.gpus.empty();
  for (auto& ph : e.phases) {
    if (ph.phase != Phase::load) {
      ph.ram_pageable += kTorchHostBytes;
      ph.ram_peak += kTorchHostBytes;
    }
    if (gpu && ph.vram_peak > 0) {
      ph.vram_reserve += kTorchVramBytes;
      ph.vram_peak += kTorchVramBytes;
    }
  }
  for (const auto& cs : s.components) {
    ComponentProfile* p = profile.find(cs.component);
    if (p == nullptr) continue;
    const std::uint64_t size = stored_sizes(*p, storage_caps(cs.storage)).total;
    const std::uint64_t extra = bnb_unquantized_extra(profile, cs);
    const Placement& pl = cs.placement;
    for (auto& ph : e.phases) {
      if (ph.phase == Phase::load) continue;
      const bool runs = (p->phases & bit(ph.phase)) != 0;
      // Unquantized modules live wherever the component's weights live.
      if (extra > 0) {
        const bool in_vram =
            pl.kind == PlacementKind::resident ||
            ((pl.kind == PlacementKind::dropped || pl.kind == PlacementKind::model_offload) &&
             runs);
        if (in_vram && gpu) {
          ph.vram_weights += extra;
          ph.vram_peak += extra;
        }
        if (rests_in_ram(pl)) {
          ph.ram_pageable += extra;
          ph.ram_peak += extra;
        }
      }
      if (pinned_copy(pl)) {
        ph.ram_pageable += size + extra;
        ph.ram_peak += size + extra;
      }
    }
    // offload_to_disk_path writes every group, unchanged weights included.
    if (pl.kind == PlacementKind::group_offload && pl.park == Tier::disk &&
        cs.storage.kind == StorageKind::native)
      e.disk_bytes += size;
    if (notes != nullptr) {
      if (pinned_copy(pl))
        notes->push_back(cs.component +
                         ": group offload with use_stream=True pins a second copy of its "
                         "offloaded weights (" +
                         format_bytes(size + extra) +
                         " more RAM; low_cpu_mem_usage=True avoids it)");
      if (extra > 0)
        notes->push_back(cs.component + ": bitsandbytes leaves " + format_bytes(extra) +
                         " unquantized (fp32 keep-modules, output head)");
    }
  }
  const std::uint64_t load_ram = diffusers_load_ram(profile, s);
  for (auto& ph : e.phases)
    if (ph.phase == Phase::load) {
      ph.ram_pageable = load_ram > ph.ram_pinned ? load_ram - ph.ram_pinned : 0;
      ph.ram_peak = std::max(load_ram, ph.ram_pinned);
    }
  e.vram_peak_bytes = e.ram_peak_bytes = e.pinned_bytes = 0;
  for (const auto& ph : e.phases) {
    e.vram_peak_bytes = std::max(e.vram_peak_bytes, ph.vram_peak);
    e.pinned_bytes = std::max(e.pinned_bytes, ph.ram_pinned);
    if (ph.phase == Phase::load)
      e.load_ram_peak_bytes = ph.ram_peak;
    else
      e.ram_peak_bytes = std::max(e.ram_peak_bytes, ph.ram_peak);
  }
  if (notes != nullptr) {
    DiffusersLoad naive;
    naive.device_map = false;
    naive.low_cpu_mem_usage = false;
    notes->push_back("diffusers load RAM " + format_bytes(e.load_ram_peak_bytes) +
                     " as emitted (low_cpu_mem_usage=True, device_map); " +
                     format_bytes(diffusers_load_ram(profile, s, naive)) +
                     " with neither (every component built, then filled, in RAM)");
  }
}

}  // namespace dmem::detail
