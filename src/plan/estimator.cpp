// The estimator: per phase (load, encode, denoise, decode) VRAM on every GPU, host RAM (pinned
// and pageable), disk, and seconds, for one strategy over a profiled model. Every formula is in
// docs/planner.md ("Estimator"); the --explain text prints the same arithmetic.
#include "plan/estimator.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>

#include "dmem/units.hpp"
#include "plan/activations.hpp"

namespace dmem::detail {

namespace {

constexpr std::array<Phase, 3> kRunPhases{Phase::encode, Phase::denoise, Phase::decode};
constexpr std::uint64_t kGiB = 1ull << 30;

std::uint32_t bit(Phase p) {
  return 1u << static_cast<unsigned>(p);
}

std::string gib(std::uint64_t b) {
  return format_bytes(b);
}

std::string secs(double s) {
  char buf[32];
  std::snprintf(buf, sizeof buf, s < 10 ? "%.3f s" : "%.1f s", s);
  return buf;
}

std::string num(double v, const char* fmt = "%.3g") {
  char buf[48];
  std::snprintf(buf, sizeof buf, fmt, v);
  return buf;
}

bool streams(PlacementKind k) {
  return k == PlacementKind::group_offload || k == PlacementKind::sequential ||
         k == PlacementKind::partial || k == PlacementKind::disk;
}

std::uint32_t bytes_of(DType d) {
  const auto b = dtype_bytes(d, 1);
  return b && *b > 0 ? static_cast<std::uint32_t>(*b) : 2;
}

// Everything the phase sums need about one component under its placement and storage.
struct Costed {
  const ComponentStrategy* cs = nullptr;
  ComponentProfile* p = nullptr;
  const StoredSizes* st = nullptr;
  bool on_gpu = false;
  std::size_t gpu = 0;
  std::uint32_t phases = 0;
  Phase first = Phase::decode, last = Phase::encode;
  bool freed_after_last = false;  ///< dropped
  std::uint64_t home_vram = 0;    ///< resident from its first phase on
  std::uint64_t phase_vram = 0;   ///< extra while its phase runs (offloaded weights in VRAM)
  std::uint64_t park_pinned = 0, park_pageable = 0, cpu_bytes = 0;
  std::uint64_t stream_staging = 0;  ///< pinned staging of disk streaming, during its phases
  std::uint64_t streamed_per_pass = 0;
  std::uint64_t groups_per_pass = 0;
  std::uint64_t group_bytes = 0;
  std::uint64_t once_per_phase = 0;  ///< bytes moved to the GPU once when its phase starts
  double bw = 1;                     ///< GB/s of its streaming path
  bool overlap = false;
  std::uint64_t disk_write = 0;
  std::uint64_t read_bytes = 0;
  double read_rate = 1;  ///< GB/s
  double compute_pass_s = 0;
  double pass_s = 0;
  std::uint64_t activations = 0;
  double slack = kAllocatorSlack;  ///< caching-allocator blocks held beyond its live activations
  std::uint64_t scratch = 0;
  std::uint64_t load_scratch = 0;  ///< loader: one native tensor being transformed
};

double gpu_flops(const GpuSpec& g) {
  const double tf = g.bf16_tflops > 0 ? g.bf16_tflops : 20.0;
  return tf * 1e12 * kGpuEfficiency;
}

// The activation model times the calibrated factor (1 when uncalibrated or out of range).
std::uint64_t scaled_activations(std::uint64_t modelled, double scale) {
  if (!(scale > 0) || scale == 1.0) return modelled;
  return static_cast<std::uint64_t>(std::llround(static_cast<double>(modelled) * scale));
}

double cpu_flops(const Hardware& hw) {
  const double gf =
      hw.cpu_gflops > 0 ? hw.cpu_gflops : 50.0 * std::max<std::uint32_t>(1, hw.cpu_cores);
  return gf * 1e9 * kCpuEfficiency;
}

}  // namespace

Result<Estimate> estimate_profiled(ModelProfile& mp, const Strategy& strategy, const Hardware& hw,
                                   Explain* ex) {
  auto say = [&](std::string line) {
    if (ex != nullptr) ex->lines.push_back(std::move(line));
  };
  for (const auto& cs : strategy.components)
    if (mp.find(cs.component) == nullptr)
      return Status(Errc::invalid_argument, "the strategy places '" + cs.component + "' but " +
                                                mp.model->name + " has no such component")
          .with_rule("component.unknown");
  const Workload& wl = mp.workload;
  const std::uint32_t steps = std::max<std::uint32_t>(1, wl.steps);
  const double disk_gbps = hw.disk_read_gbps > 0 ? hw.disk_read_gbps : 2.0;

  std::vector<Costed> cc;
  cc.reserve(mp.components.size());
  static const ComponentStrategy kDefault{};
  std::vector<ComponentStrategy> defaults;
  defaults.reserve(mp.components.size());
  for (auto& p : mp.components) {
    Costed c;
    c.p = &p;
    c.cs = strategy.find(p.component->name);
    if (c.cs == nullptr) {
      defaults.push_back(kDefault);
      defaults.back().component = p.component->name;
      c.cs = &defaults.back();
    }
    const Storage& sto = c.cs->storage;
    const QuantizerCaps* caps = storage_caps(sto);
    if (sto.kind != StorageKind::native && caps == nullptr)
      return Status(Errc::invalid_argument,
                    p.component->name + ": unknown storage transform '" + sto.quantizer + "'")
          .with_rule("quantizer.unknown");
    c.st = &stored_sizes(p, caps);
    const Placement& pl = c.cs->placement;
    c.on_gpu = pl.kind != PlacementKind::cpu;
    if (c.on_gpu) {
      if (hw.gpus.empty())
        return Status(
                   Errc::invalid_argument,
                   p.component->name + ": placement " +
                       std::string(pl.kind == PlacementKind::dropped ? "dropped" : "on the GPU") +
                       " needs a GPU, and the machine has none")
            .with_rule("device.none");
      if (pl.gpu < 0 || static_cast<std::size_t>(pl.gpu) >= hw.gpus.size())
        return Status(Errc::invalid_argument,
                      p.component->name + ": gpu " + std::to_string(pl.gpu) + " does not exist")
            .with_rule("device.index");
      c.gpu = static_cast<std::size_t>(pl.gpu);
    }
    c.phases = p.phases;
    for (Phase ph : kRunPhases)
      if (c.phases & bit(ph)) {
        c.first = std::min(c.first, ph);
        c.last = std::max(c.last, ph);
      }
    cc.push_back(c);
  }

  // ---- per component: where its bytes live, what moves, how long it computes ---------------
  for (auto& c : cc) {
    const Placement& pl = c.cs->placement;
    const StoredSizes& st = *c.st;
    const ComponentSummary& sum = c.p->summary;
    const std::string& name = c.p->component->name;
    const GpuSpec* g = c.on_gpu ? &hw.gpus[c.gpu] : nullptr;
    const double pinned_bw = g != nullptr && g->h2d_pinned_gbps > 0 ? g->h2d_pinned_gbps : 12.0;
    const double pageable_bw =
        g != nullptr && g->h2d_pageable_gbps > 0 ? g->h2d_pageable_gbps : pinned_bw / 2;
    const Tier park = pl.park;
    const bool park_disk = park == Tier::disk || pl.kind == PlacementKind::disk;
    c.bw = park_disk              ? std::min(disk_gbps, pinned_bw)
           : park == Tier::pinned ? pinned_bw
                                  : pageable_bw;
    const std::uint64_t inflight = pl.use_stream ? std::uint64_t{pl.prefetch} + 1 : 1;
    const std::uint64_t nblocks = st.blocks.size();
    auto park_bytes = [&](std::uint64_t b) {
      if (park == Tier::pinned)
        c.park_pinned += b;
      else if (park == Tier::pageable)
        c.park_pageable += b;
    };
    std::string where;
    switch (pl.kind) {
      case PlacementKind::resident:
        c.home_vram = st.total;
        where = "resident: " + gib(st.total) + " in VRAM from its first phase on";
        break;
      case PlacementKind::dropped:
        c.home_vram = st.total;
        c.freed_after_last = true;
        where = "on the GPU for its phase, then freed: " + gib(st.total);
        break;
      case PlacementKind::model_offload:
        c.phase_vram = st.total;
        park_bytes(st.total);
        c.once_per_phase = st.total;
        where = "model offload: " + gib(st.total) + " parked, moved whole at its phase";
        break;
      case PlacementKind::group_offload:
        park_bytes(st.total);
        c.overlap = pl.use_stream;
        if (pl.level == OffloadLevel::block && nblocks > 0) {
          const std::uint64_t bpg = std::max<std::uint32_t>(1, pl.blocks_per_group);
          c.group_bytes = bpg * st.max_block;
          c.phase_vram = st.non_block + inflight * c.group_bytes;
          c.streamed_per_pass = st.total - st.non_block;
          c.groups_per_pass = (nblocks + bpg - 1) / bpg;
          c.once_per_phase = st.non_block;
          where = "group offload: non-block " + gib(st.non_block) + " + " +
                  std::to_string(inflight) + " x " + std::to_string(bpg) + " x largest block " +
                  gib(st.max_block);
        } else {
          c.group_bytes = st.max_leaf;
          c.phase_vram = inflight * st.max_leaf;
          c.streamed_per_pass = st.total;
          c.groups_per_pass = sum.leaves.size();
          where = "leaf-level offload: " + std::to_string(inflight) + " x largest leaf " +
                  gib(st.max_leaf);
        }
        break;
      case PlacementKind::sequential:
        park_bytes(st.total);
        c.group_bytes = st.max_leaf;
        c.phase_vram = st.max_leaf;
        c.streamed_per_pass = st.total;
        c.groups_per_pass = sum.leaves.size();
        c.overlap = false;
        where = "sequential: largest leaf " + gib(st.max_leaf) + ", synchronous copies";
        break;
      case PlacementKind::partial: {
        const std::uint64_t k = std::min<std::uint64_t>(pl.resident_blocks, nblocks);
        std::uint64_t resident = st.non_block, streamed = 0, max_streamed = 0;
        for (std::uint64_t i = 0; i < nblocks; ++i) {
          if (i < k)
            resident += st.blocks[i];
          else {
            streamed += st.blocks[i];
            max_streamed = std::max(max_streamed, st.blocks[i]);
          }
        }
        c.home_vram = resident;
        c.group_bytes = max_streamed;
        c.phase_vram = inflight * max_streamed;
        c.streamed_per_pass = streamed;
        c.groups_per_pass = nblocks - k;
        c.overlap = pl.use_stream;
        if (park == Tier::disk)
          c.stream_staging = inflight * max_streamed;
        else
          park_bytes(streamed);
        where = "partial: " + std::to_string(k) + "/" + std::to_string(nblocks) +
                " blocks resident (" + gib(resident) + " with non-block), " +
                std::to_string(nblocks - k) + " streamed (" + gib(streamed) + ") from " +
                (park == Tier::disk     ? "disk"
                 : park == Tier::pinned ? "pinned RAM"
                                        : "pageable RAM");
        break;
      }
      case PlacementKind::disk:
        c.group_bytes = nblocks > 0 ? st.max_block : st.max_leaf;
        c.phase_vram = st.non_block + inflight * c.group_bytes;
        c.streamed_per_pass = nblocks > 0 ? st.total - st.non_block : st.total;
        c.groups_per_pass = nblocks > 0 ? nblocks : sum.leaves.size();
        c.once_per_phase = nblocks > 0 ? st.non_block : 0;
        c.stream_staging = inflight * c.group_bytes;
        c.overlap = pl.use_stream;
        where = "disk tier: streamed per step from " +
                std::string(c.cs->storage.kind == StorageKind::native ? "the checkpoint"
                                                                      : "the cache dir");
        break;
      case PlacementKind::cpu:
        c.cpu_bytes = st.total;
        where = "on the CPU: " + gib(st.total) + " in pageable RAM";
        break;
    }
    // A copy from pageable memory is staged by the driver through its own bounce buffer and
    // returns only when done: it cannot run under compute, whatever the stream.
    if (park == Tier::pageable) c.overlap = false;
    if (park == Tier::disk && pl.kind != PlacementKind::partial && pl.kind != PlacementKind::disk &&
        pl.kind != PlacementKind::resident && pl.kind != PlacementKind::dropped &&
        pl.kind != PlacementKind::cpu)
      c.stream_staging = std::max<std::uint64_t>(c.group_bytes, c.once_per_phase) * inflight;

    // Disk: transformed weights that rest on disk are written to the cache once.
    const bool rests_on_disk = pl.kind == PlacementKind::disk ||
                               (park == Tier::disk && streams(pl.kind)) ||
                               (park == Tier::disk && pl.kind == PlacementKind::model_offload);
    const bool transformed = c.cs->storage.kind != StorageKind::native && st.caps != nullptr;
    if (rests_on_disk && transformed) c.disk_write = c.streamed_per_pass + c.once_per_phase;

    // Load: native bytes read once; what stays on disk as the checkpoint is not read.
    c.read_bytes = sum.bytes;
    if (rests_on_disk && !transformed) {
      const std::uint64_t stay = pl.kind == PlacementKind::partial ? c.streamed_per_pass
                                 : pl.kind == PlacementKind::disk  ? c.streamed_per_pass
                                                                   : sum.bytes;
      c.read_bytes = sum.bytes > stay ? sum.bytes - stay : 0;
    }
    const bool vram_home = c.on_gpu && (c.home_vram > 0 || c.phase_vram > 0);
    c.read_rate = vram_home && (c.home_vram > 0) ? std::min(disk_gbps, pinned_bw) : disk_gbps;

    // Compute.
    const QuantizerCaps* caps = st.caps;
    const double speed = caps != nullptr ? caps->speed_factor : 1.0;
    const double rate = c.on_gpu ? gpu_flops(*g) : cpu_flops(hw);
    // The quantizer's speed factor acts on its GEMMs (linear and conv weights), not on attention;
    // on a GPU the non-GEMM ops (norms, modulation, RoPE, activations, casts) add memory
    // traffic in proportion to the GEMM work (kNonGemmBytesPerGemmFlop, fitted in
    // docs/planner.md): the norms, modulation and activations touch every token once per layer,
    // as the GEMMs do, while attention's FLOPs grow with the square of the tokens.
    const double gemm_flops = std::max(0.0, c.p->forward_flops - c.p->attention_flops);
    const double mem_bw = g != nullptr && g->mem_gbps > 0 ? g->mem_gbps : kDefaultMemGbps;
    const double traffic_s =
        g != nullptr ? gemm_flops * kNonGemmBytesPerGemmFlop / (mem_bw * 1e9) : 0.0;
    c.compute_pass_s = (gemm_flops * speed + c.p->attention_flops) / rate + traffic_s;
    double transfer = 0;
    if (c.streamed_per_pass > 0) {
      transfer = static_cast<double>(c.streamed_per_pass) / (c.bw * 1e9) +
                 static_cast<double>(c.groups_per_pass) * kTransferOverheadS;
      const double exposed = static_cast<double>(c.group_bytes) / (c.bw * 1e9);
      c.pass_s =
          c.overlap ? std::max(c.compute_pass_s, transfer) + exposed : c.compute_pass_s + transfer;
    } else {
      c.pass_s = c.compute_pass_s;
    }

    // Activations and scratch while it runs. A VAE its pipeline upcasts for an fp16 run decodes
    // in fp32: fp32 activations, and its weights replaced by fp32 copies for the phase.
    const bool upcast =
        c.p->fp32_bytes > 0 && c.cs->storage.compute_dtype == DType::f16 && c.on_gpu;
    const std::uint32_t cb = upcast ? 4 : bytes_of(c.cs->storage.compute_dtype);
    const bool whole = pl.kind == PlacementKind::resident || pl.kind == PlacementKind::dropped ||
                       pl.kind == PlacementKind::model_offload;
    if (upcast && whole && c.p->fp32_bytes > st.total) c.phase_vram += c.p->fp32_bytes - st.total;
    ActivationInput ai;
    ai.component = c.p->component;
    ai.denoiser = mp.denoiser;
    ai.edit = mp.edit;
    ai.vae_tiling = strategy.vae_tiling;
    ai.vae_slicing = strategy.vae_slicing;
    ai.compute_bytes = cb;
    ai.phase = c.first;
    c.activations = wl.activation_gib
                        ? static_cast<std::uint64_t>(*wl.activation_gib * static_cast<double>(kGiB))
                        : scaled_activations(activation_bytes(ai, wl), hw.activation_scale);
    // A VAE decoder's full-resolution maps come in several shapes (2x, 1x base channels, the
    // upsampled input); a caching allocator keeps the blocks of each: reserved ~2x allocated.
    if (c.p->component->role == Role::vae && !strategy.vae_tiling) c.slack = kVaeAllocatorSlack;
    if (transformed) {
      c.scratch = st.largest_transformed_elems * cb;  // one layer dequantized / upcast at a time
      c.load_scratch = st.largest_transformed_native;
    }

    if (ex != nullptr) {
      say(name + " · " +
          std::string(caps != nullptr ? caps->display
                                      : "native " + std::string(dtype_name(
                                                        sum.bytes_by_dtype.empty()
                                                            ? DType::bf16
                                                            : sum.bytes_by_dtype.front().first))) +
          " · " + gib(st.total) + " stored (native " + gib(sum.bytes) + ")");
      say("  " + where);
      if (c.streamed_per_pass > 0)
        say("  moves " + gib(c.streamed_per_pass) + " per pass at " + num(c.bw, "%.1f") +
            " GB/s = " + secs(transfer) + " (" + std::to_string(c.groups_per_pass) + " groups x " +
            num(kTransferOverheadS * 1e6, "%.0f") + " us overhead included)");
      say("  compute (" + num(gemm_flops / 1e12, "%.2f") + " TFLOP GEMM" +
          (speed != 1.0 ? " x speed factor " + num(speed, "%.2f") : std::string()) + " + " +
          num(c.p->attention_flops / 1e12, "%.2f") + " TFLOP attention) / " +
          num(rate / 1e12, "%.2f") + " TFLOP/s effective" +
          (traffic_s > 0
               ? " + non-GEMM traffic " + num(gemm_flops * kNonGemmBytesPerGemmFlop / 1e9, "%.0f") +
                     " GB / " + num(mem_bw, "%.0f") + " GB/s"
               : std::string()) +
          " = " + secs(c.compute_pass_s) + " per pass");
      if (c.streamed_per_pass > 0)
        say(std::string("  pass = ") +
            (c.overlap ? "max(compute, transfer) + first group exposed" : "compute + transfer") +
            " = " + secs(c.pass_s) + " x " + std::to_string(c.p->passes) + " pass(es)");
      if (upcast)
        say("  decodes in fp32 (force_upcast with fp16 compute): weights " + gib(c.p->fp32_bytes) +
            " during its phase");
      say("  activations " + gib(c.activations) +
          (wl.activation_gib ? " (--activation-gib)"
           : hw.activation_scale != 1.0
               ? " (activation model x calibrated " + num(hw.activation_scale, "%.3g") + ")"
               : " (activation model)") +
          (c.scratch > 0 ? ", dequant/upcast scratch " + gib(c.scratch) : std::string()));
    }
  }

  // ---- phases ---------------------------------------------------------------------------------
  Estimate e;
  const std::size_t ngpu = hw.gpus.size();
  std::vector<bool> gpu_used(ngpu, false);
  for (const auto& c : cc)
    if (c.on_gpu) gpu_used[c.gpu] = true;
  const std::uint64_t host_reserve = ngpu > 0 ? kHostReserveGpuBytes : kHostReserveCpuBytes;

  std::uint64_t parks_pinned = 0, parks_pageable = 0, cpu_weights = 0, host_scratch = 0;
  for (const auto& c : cc) {
    parks_pinned += c.park_pinned;
    parks_pageable += c.park_pageable;
    cpu_weights += c.cpu_bytes;
    const bool ram_home = c.park_pinned + c.park_pageable + c.cpu_bytes > 0;
    if (ram_home) host_scratch = std::max(host_scratch, c.load_scratch);
  }

  // VRAM homes per GPU and phase (no activations): also the peak while the loader fills them.
  auto homes = [&](std::size_t gi, Phase ph) {
    std::uint64_t w = 0;
    for (const auto& c : cc) {
      if (!c.on_gpu || c.gpu != gi || c.phases == 0) continue;
      const bool alive = ph >= c.first && (!c.freed_after_last || ph <= c.last);
      if (alive) w += c.home_vram;
      if (c.phases & bit(ph)) w += c.phase_vram;
    }
    return w;
  };

  PhaseEstimate load;
  load.phase = Phase::load;
  for (std::size_t gi = 0; gi < ngpu; ++gi) {
    if (!gpu_used[gi]) continue;
    std::uint64_t filled = 0, scratch = 0;
    for (Phase ph : kRunPhases) filled = std::max(filled, homes(gi, ph));
    for (const auto& c : cc)
      if (c.on_gpu && c.gpu == gi && c.home_vram > 0) scratch = std::max(scratch, c.load_scratch);
    const std::uint64_t peak = filled + scratch + kCudaContextBytes;
    if (peak > load.vram_peak) {
      load.vram_weights = filled;
      load.vram_workspace = scratch;
      load.vram_reserve = kCudaContextBytes;
      load.vram_peak = peak;
    }
  }
  load.ram_pinned = parks_pinned + (ngpu > 0 ? kStagingWindowBytes : 0);
  load.ram_pageable = parks_pageable + cpu_weights + host_reserve + host_scratch +
                      (ngpu > 0 ? 0 : kStagingWindowBytes);
  load.ram_peak = load.ram_pinned + load.ram_pageable;

  double load_s = 0;
  for (const auto& c : cc) {
    load_s += static_cast<double>(c.read_bytes) / (c.read_rate * 1e9);
    load_s += static_cast<double>(c.disk_write) / (disk_gbps * 1e9);
  }
  load.seconds = load_s;
  e.phases.push_back(load);
  if (ex != nullptr) {
    say("load: every component read once from its checkpoint into its home (dmem's streaming "
        "loader: pread into a " +
        gib(kStagingWindowBytes) + " pinned window, never a whole component in RAM)");
    say("  RAM = parked pinned " + gib(parks_pinned) + " + parked pageable " + gib(parks_pageable) +
        " + CPU weights " + gib(cpu_weights) + " + staging " + gib(kStagingWindowBytes) +
        " + host transform scratch " + gib(host_scratch) + " + host reserve " + gib(host_reserve) +
        " = " + gib(load.ram_peak));
    say("  VRAM = largest set of VRAM homes " + gib(load.vram_weights) + " + transform scratch " +
        gib(load.vram_workspace) + " + CUDA context " + gib(load.vram_reserve) + " = " +
        gib(load.vram_peak));
    say("  time = " + secs(load_s) + " (bytes / min(disk " + num(disk_gbps, "%.1f") +
        " GB/s, pinned H2D) for GPU homes, / disk for RAM homes)");
  }

  double step_s = 0;
  std::uint64_t moved_per_step = 0;
  for (Phase ph : kRunPhases) {
    PhaseEstimate pe;
    pe.phase = ph;
    // Seconds: the components of this phase run one after the other.
    double s = 0;
    for (const auto& c : cc) {
      if ((c.phases & bit(ph)) == 0) continue;
      const double once =
          c.once_per_phase > 0 ? static_cast<double>(c.once_per_phase) / (c.bw * 1e9) : 0.0;
      if (ph == Phase::denoise) {
        const double per_step = c.pass_s * c.p->passes;
        step_s += per_step;
        moved_per_step += c.streamed_per_pass * c.p->passes;
        s += per_step * steps + once;
      } else {
        double t =
            c.pass_s * (ph == Phase::encode && c.p->component->role == Role::vae ? 1 : c.p->passes);
        if (ph == Phase::decode && strategy.vae_tiling) t *= kTilingOverhead;
        s += t + once;
      }
    }
    pe.seconds = s;
    // VRAM per GPU: homes + in-flight + the largest running component's activations.
    for (std::size_t gi = 0; gi < ngpu; ++gi) {
      if (!gpu_used[gi]) continue;
      std::uint64_t act = 0, scratch = 0, slack = 0;
      bool runs = false;
      for (const auto& c : cc) {
        if (!c.on_gpu || c.gpu != gi || (c.phases & bit(ph)) == 0) continue;
        runs = true;
        act = std::max(act, c.activations);
        scratch = std::max(scratch, c.scratch);
        slack = std::max(slack,
                         static_cast<std::uint64_t>(c.slack * static_cast<double>(c.activations)));
      }
      PhaseEstimate g;
      g.vram_weights = homes(gi, ph);
      g.vram_activations = act;
      g.vram_workspace = runs ? kGemmWorkspaceBytes + scratch : 0;
      g.vram_reserve = kCudaContextBytes + slack;
      g.vram_peak = g.vram_weights + g.vram_activations + g.vram_workspace + g.vram_reserve;
      if (g.vram_peak > pe.vram_peak) {
        pe.vram_weights = g.vram_weights;
        pe.vram_activations = g.vram_activations;
        pe.vram_workspace = g.vram_workspace;
        pe.vram_reserve = g.vram_reserve;
        pe.vram_peak = g.vram_peak;
      }
    }
    // Host RAM: parks, CPU weights, staging, CPU activations of the running component.
    std::uint64_t staging = 0, cpu_act = 0;
    for (const auto& c : cc) {
      if ((c.phases & bit(ph)) == 0) continue;
      staging += c.stream_staging;
      if (!c.on_gpu) cpu_act = std::max(cpu_act, c.activations);
    }
    pe.ram_pinned = parks_pinned + staging + (ngpu > 0 ? kStagingWindowBytes : 0);
    pe.ram_pageable = parks_pageable + cpu_weights + cpu_act + host_reserve;
    pe.ram_peak = pe.ram_pinned + pe.ram_pageable;
    e.phases.push_back(pe);
    if (ex != nullptr) {
      say(std::string(phase_name(ph)) + ": " + secs(s) +
          (ph == Phase::denoise ? " (" + std::to_string(steps) + " steps x " + secs(step_s) + ")"
                                : std::string()));
      if (ngpu > 0)
        say("  VRAM = weights " + gib(pe.vram_weights) + " + activations " +
            gib(pe.vram_activations) + " + workspace " + gib(pe.vram_workspace) + " + reserve " +
            gib(pe.vram_reserve) + " = " + gib(pe.vram_peak));
      say("  RAM = pinned " + gib(pe.ram_pinned) + " + pageable " + gib(pe.ram_pageable) + " = " +
          gib(pe.ram_peak) +
          (cpu_act > 0 ? " (CPU activations " + gib(cpu_act) + " included)" : ""));
    }
  }

  for (const auto& pe : e.phases) {
    e.vram_peak_bytes = std::max(e.vram_peak_bytes, pe.vram_peak);
    e.pinned_bytes = std::max(e.pinned_bytes, pe.ram_pinned);
    if (pe.phase == Phase::load)
      e.load_ram_peak_bytes = pe.ram_peak;
    else
      e.ram_peak_bytes = std::max(e.ram_peak_bytes, pe.ram_peak);
  }
  for (const auto& c : cc) e.disk_bytes += c.disk_write;
  e.bytes_moved_per_step = moved_per_step;
  e.load_seconds = load_s;
  e.step_seconds = step_s;
  e.image_seconds = 0;
  for (const auto& pe : e.phases)
    if (pe.phase != Phase::load) e.image_seconds += pe.seconds;
  // What a plan frees after its phase (a dropped encoder) is read again for the next image.
  e.reload_seconds = 0;
  for (const auto& c : cc)
    if (c.freed_after_last)
      e.reload_seconds += static_cast<double>(c.read_bytes) / (c.read_rate * 1e9);
  const std::uint32_t images = std::max<std::uint32_t>(1, wl.images);
  e.total_seconds = e.load_seconds + images * e.image_seconds + (images - 1) * e.reload_seconds;
  if (ex != nullptr) {
    say("image = encode + " + std::to_string(steps) +
        " x step + decode = " + secs(e.image_seconds) + "; moved per step " + gib(moved_per_step) +
        "; disk written " + gib(e.disk_bytes));
    if (images > 1)
      say("total = load " + secs(e.load_seconds) + " + " + std::to_string(images) + " images x " +
          secs(e.image_seconds) + " + " + std::to_string(images - 1) + " x re-reading " +
          secs(e.reload_seconds) +
          " (components freed after each image) = " + secs(e.total_seconds));
    else
      say("total = load " + secs(e.load_seconds) + " + image " + secs(e.image_seconds) + " = " +
          secs(e.total_seconds));
  }
  return e;
}

}  // namespace dmem::detail

namespace dmem {
inline namespace v1 {

Result<Estimate> estimate(const Model& model, const Strategy& strategy, const Hardware& hardware,
                          const Workload& workload) noexcept {
  if (model.components.empty())
    return Status(Errc::invalid_argument, "model '" + model.name + "' has no components");
  detail::ModelProfile profile = detail::profile_model(model, workload);
  return detail::estimate_profiled(profile, strategy, hardware);
}

}  // namespace v1
}  // namespace dmem
