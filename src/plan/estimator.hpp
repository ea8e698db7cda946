// Internal: the estimator over a profiled model. Profiling (module tree, per-tensor flags,
// FLOPs for the workload) is done once per planning run; each strategy is then costed from it
// in microseconds. The public estimate() profiles and costs one strategy.
#pragma once

#include <cstdint>
#include <deque>
#include <string>
#include <vector>

#include "dmem/module_tree.hpp"
#include "dmem/plan.hpp"
#include "dmem/quantizer.hpp"

namespace dmem::detail {

/// One component's weights under one storage (exact, per tensor via quantized_bytes()).
struct StoredSizes {
  const QuantizerCaps* caps = nullptr;  ///< nullptr: native
  std::uint64_t total = 0;
  std::uint64_t non_block = 0;        ///< outside repeated blocks
  std::vector<std::uint64_t> blocks;  ///< per block, in ComponentSummary::blocks order
  std::uint64_t max_block = 0;
  std::uint64_t max_leaf = 0;
  std::uint64_t transformed_bytes_native = 0;    ///< native bytes of the tensors it transforms
  std::uint64_t largest_transformed_native = 0;  ///< one tensor, native bytes (load scratch)
  std::uint64_t largest_transformed_elems = 0;   ///< one tensor's elements (dequant scratch)
};

struct ComponentProfile {
  const Component* component = nullptr;
  ComponentSummary summary;
  std::vector<std::int32_t> tensor_leaf;   ///< index into summary.leaves
  std::vector<std::uint8_t> tensor_flags;  ///< kLinearWeight | kCastable
  double forward_flops = 0;                ///< one forward pass for the workload (batch included)
  double attention_flops = 0;              ///< part of forward_flops spent in attention
  std::uint32_t phases = 0;                ///< bit per Phase it runs in
  std::uint32_t passes = 1;                ///< forward passes per use (CFG, negative prompt)
  std::uint64_t fp32_bytes =
      0;  ///< its weights upcast to fp32, when an fp16 run upcasts it (else 0)
  std::deque<StoredSizes> stored;  ///< lazily filled cache (stable references)
};

inline constexpr std::uint8_t kLinearWeight = 1;
inline constexpr std::uint8_t kCastable = 2;

struct ModelProfile {
  const Model* model = nullptr;
  Workload workload;
  bool edit = false;  ///< an edit pipeline (the VAE and encoder see a reference image)
  const ArchInfo* denoiser = nullptr;
  std::vector<ComponentProfile> components;  ///< in model order

  [[nodiscard]] ComponentProfile* find(std::string_view name) noexcept;
};

/// Summaries, per-tensor flags and FLOPs of every component for this workload.
[[nodiscard]] ModelProfile profile_model(const Model& model, const Workload& workload);

/// Stored sizes of a component under a storage transform (cached in the profile).
[[nodiscard]] const StoredSizes& stored_sizes(ComponentProfile& profile, const QuantizerCaps* caps);

/// The arithmetic behind an estimate, line by line (dmem plan --explain).
struct Explain {
  std::vector<std::string> lines;
};

/// Costs a strategy. Components the strategy does not name stay resident in their native dtype.
[[nodiscard]] Result<Estimate> estimate_profiled(ModelProfile& profile, const Strategy& strategy,
                                                 const Hardware& hardware,
                                                 Explain* explain = nullptr);

/// Margins and defaults (docs/planner.md, "Defaults").
inline constexpr std::uint64_t kCudaContextBytes = 512ull << 20;  ///< per GPU in use
inline constexpr double kAllocatorSlack = 0.05;                   ///< of activations
inline constexpr double kVaeAllocatorSlack = 1.0;  ///< of an untiled VAE decode's activations
inline constexpr std::uint64_t kGemmWorkspaceBytes = 32ull << 20;   ///< cuBLASLt workspace
inline constexpr std::uint64_t kStagingWindowBytes = 128ull << 20;  ///< loader: 2 x 64 MiB pinned
inline constexpr std::uint64_t kHostReserveGpuBytes = 1ull << 30;   ///< process + CUDA host side
inline constexpr std::uint64_t kHostReserveCpuBytes = 512ull << 20;
inline constexpr double kGpuEfficiency = 0.55;  ///< achieved / dense peak bf16 throughput
inline constexpr double kNonGemmBytesPerGemmFlop = 0.0056;  ///< non-GEMM GPU memory traffic
inline constexpr double kDefaultMemGbps = 1000;             ///< GPU memory bandwidth when unknown
inline constexpr double kCpuEfficiency = 0.5;               ///< achieved / cpu_gflops
inline constexpr double kTransferOverheadS = 20e-6;  ///< per group moved (launch, event, hook)
inline constexpr double kTilingOverhead = 1.15;      ///< tiled VAE decode recomputes overlaps

/// Human text for a phase ("encode").
[[nodiscard]] const char* phase_name(Phase phase) noexcept;

}  // namespace dmem::detail
