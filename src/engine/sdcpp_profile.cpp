// The stable-diffusion.cpp profile: what sd-cli's flags can express and the memory it uses.
// Facts, sources and which figures are assumptions: docs/engines.md, "stable-diffusion.cpp".
#include <algorithm>

#include "dmem/quantizer.hpp"
#include "dmem/units.hpp"
#include "engine/engine_profile.hpp"

namespace dmem::detail {

namespace {

constexpr std::uint64_t kGiB = 1ull << 30;
// A C++ process with ggml: the binary, the CPU backend's thread pool and tokenizers (assumption).
constexpr std::uint64_t kSdcppHostBytes = kGiB / 4;
// ggml-cuda's memory pool and cuBLAS workspace beside the compute buffers (assumption).
constexpr std::uint64_t kSdcppVramBytes = kGiB * 3 / 10;

Expressed refuse(std::string component, std::string why) {
  Expressed e;
  e.component = std::move(component);
  e.why = std::move(why);
  return e;
}

std::string storage_refusal(const Component& c, const Storage& st) {
  if (st.kind == StorageKind::layerwise_cast)
    return "ggml has no fp8 storage (sd.cpp converts fp8 weights to f16 as it loads them); GGUF "
           "q8_0 is the nearest";
  if (st.kind != StorageKind::quantized) return {};
  if (is_quantizer(st, "gguf")) {
    if (c.role == Role::vae)
      return "the plan quantizes the VAE; sd.cpp is given it as safetensors here";
    return {};
  }
  const QuantizerCaps* caps = storage_caps(st);
  return "sd.cpp reads GGUF and ggml types only, not " +
         (caps != nullptr ? caps->display : st.quantizer) + "; GGUF is the nearest";
}

}  // namespace

Expressed express_sdcpp(const Model& model, const Strategy& strategy) {
  Expressed out;
  out.strategy = strategy;
  Strategy& s = out.strategy;
  std::string unknown;
  if (!list_all_components(model, s, unknown))
    return refuse(unknown, "the model has no component '" + unknown + "'");
  bool all_cpu = true;
  for (const auto& cs : s.components) {
    all_cpu = all_cpu && cs.placement.kind == PlacementKind::cpu;
    if (std::string why = storage_refusal(*model.find(cs.component), cs.storage); !why.empty())
      return refuse(cs.component, std::move(why));
  }
  if (all_cpu) {
    out.ok = true;  // a CPU build of sd-cli
    return out;
  }
  // --offload-to-cpu is one switch: every model on the GPU keeps its weights in RAM and copies
  // them to VRAM for its own compute.
  bool offload = false;
  int te_gpu = 0, te_cpu = 0;
  for (const auto& cs : s.components) {
    const Component& c = *model.find(cs.component);
    const PlacementKind k = cs.placement.kind;
    offload = offload || k == PlacementKind::model_offload;
    if (c.role != Role::denoiser && c.role != Role::vae)
      (k == PlacementKind::cpu ? te_cpu : te_gpu)++;
  }
  if (te_gpu > 0 && te_cpu > 0)
    return refuse("", "--clip-on-cpu moves every text encoder to the CPU, or none");
  for (auto& cs : s.components) {
    const Component& c = *model.find(cs.component);
    Placement& p = cs.placement;
    const bool den = c.role == Role::denoiser, vae = c.role == Role::vae;
    switch (p.kind) {
      case PlacementKind::resident:
      case PlacementKind::dropped:
      case PlacementKind::model_offload: {
        if (den && p.kind == PlacementKind::dropped)
          return refuse(cs.component, "the diffusion model is needed until the last step");
        if (vae && p.kind == PlacementKind::dropped)
          return refuse(cs.component, "the VAE is needed for the decode");
        const std::int32_t gpu = p.gpu;
        p = Placement{};
        p.gpu = gpu;
        if (offload) {
          p.kind = PlacementKind::model_offload;
          p.park = Tier::pageable;
          p.use_stream = false;
        } else if (!den && !vae) {
          // sd-cli frees the text encoders' weights after conditioning
          // (free_params_immediately, on by default in sd_ctx_params_init).
          p.kind = PlacementKind::dropped;
        }
        break;
      }
      case PlacementKind::cpu:
        if (den)
          return refuse(cs.component,
                        "sd-cli runs the diffusion model on its backend (a CPU build "
                        "runs everything on the CPU)");
        break;  // --clip-on-cpu, --vae-on-cpu
      default:
        return refuse(cs.component,
                      "sd-cli moves a model whole (--offload-to-cpu); it has no partial residency, "
                      "block or layer streaming, or disk tier");
    }
  }
  out.ok = true;
  return out;
}

void adjust_sdcpp(ModelProfile& profile, const Strategy& s, const Hardware& hw, Estimate& e,
                  std::vector<std::string>* notes) {
  const bool gpu = !hw.gpus.empty();
  for (auto& ph : e.phases) {
    if (ph.phase != Phase::load) {
      ph.ram_pageable += kSdcppHostBytes;
      ph.ram_peak += kSdcppHostBytes;
    }
    if (gpu && ph.vram_peak > 0) {
      ph.vram_reserve += kSdcppVramBytes;
      ph.vram_peak += kSdcppVramBytes;
    }
  }
  // Load: each tensor is read into a host buffer and copied to its backend buffer, so RAM holds
  // the weights whose buffer is on the CPU (offloaded or CPU-run models) and one tensor in flight
  // (twice when it is converted).
  std::uint64_t in_ram = 0, largest_tensor = 0;
  for (const auto& cs : s.components) {
    ComponentProfile* p = profile.find(cs.component);
    if (p == nullptr) continue;
    const PlacementKind k = cs.placement.kind;
    if (k == PlacementKind::model_offload || k == PlacementKind::cpu)
      in_ram += stored_sizes(*p, storage_caps(cs.storage)).total;
    for (const auto& t : p->component->tensors) largest_tensor = std::max(largest_tensor, t.nbytes);
  }
  const std::uint64_t load_ram =
      kHostReserveGpuBytes + kSdcppHostBytes + in_ram + 2 * largest_tensor;
  for (auto& ph : e.phases)
    if (ph.phase == Phase::load) {
      ph.ram_pageable = load_ram > ph.ram_pinned ? load_ram - ph.ram_pinned : 0;
      ph.ram_peak = std::max(load_ram, ph.ram_pinned);
    }
  refresh_totals(e);
  if (notes != nullptr)
    notes->push_back("sd.cpp load RAM " + format_bytes(e.load_ram_peak_bytes) +
                     " (weights read tensor by tensor into their backend buffers)");
}

}  // namespace dmem::detail
