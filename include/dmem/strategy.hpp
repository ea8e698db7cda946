// Strategy: plain, serialisable data saying where each component lives and how it is stored.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "dmem/dtype.hpp"
#include "dmem/status.hpp"

namespace dmem {
inline namespace v1 {

enum class PlacementKind : std::uint8_t {
  resident,       ///< on the GPU for the whole run
  model_offload,  ///< whole component moved to the GPU for its phase, back afterwards
  group_offload,  ///< groups of blocks (or leaves) moved on demand, optionally on a stream
  sequential,     ///< every leaf moved just before it runs (diffusers sequential offload)
  partial,        ///< the first `resident_blocks` blocks stay, the rest stream each step
  cpu,            ///< computes on the CPU, never touches the GPU
  disk,           ///< parked on disk (the checkpoint itself when weights are unchanged), streamed
  dropped,        ///< used for one phase, then freed (e.g. text encoder after encode)
};

enum class OffloadLevel : std::uint8_t { block, leaf };
enum class Tier : std::uint8_t { pinned, pageable, disk };

struct Placement {
  PlacementKind kind = PlacementKind::resident;
  OffloadLevel level = OffloadLevel::block;  ///< group_offload only
  std::uint32_t blocks_per_group = 1;        ///< group_offload at block level
  bool use_stream = true;                    ///< overlap copies with compute
  bool record_stream = false;
  std::uint32_t prefetch = 1;         ///< groups in flight ahead of compute
  std::uint32_t resident_blocks = 0;  ///< partial: k
  Tier park = Tier::pinned;           ///< where offloaded weights rest
  std::int32_t gpu = 0;               ///< device index for compute
};

enum class StorageKind : std::uint8_t { native, layerwise_cast, quantized };

struct Storage {
  StorageKind kind = StorageKind::native;
  DType cast_dtype = DType::f8_e4m3;  ///< layerwise_cast: f8_e4m3, f8_e5m2, or bf16 / f16 (a
                                      ///< downcast of wider weights, in the compute dtype)
  std::string quantizer;              ///< quantized: stable id, e.g. "dmem.quantizer.nf4"
  std::vector<std::pair<std::string, std::string>> params;  ///< quantizer parameters
  DType compute_dtype = DType::bf16;
};

struct ComponentStrategy {
  std::string component;  ///< "transformer"
  Placement placement;
  Storage storage;
};

struct Strategy {
  std::vector<ComponentStrategy> components;
  bool vae_tiling = false;
  bool vae_slicing = false;

  [[nodiscard]] const ComponentStrategy* find(std::string_view component) const noexcept;
};

/// JSON in and out (docs/strategy.md). Unknown keys and values are errors naming the key.
[[nodiscard]] Result<Strategy> strategy_from_json(std::string_view json) noexcept;
[[nodiscard]] std::string strategy_to_json(const Strategy& strategy, int indent = 2);
/// One line for tables: "transformer nf4 · 42/60 blocks resident · text_encoder cpu".
[[nodiscard]] std::string strategy_summary(const Strategy& strategy);

}  // namespace v1
}  // namespace dmem
