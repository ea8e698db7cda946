// How the planner and validator see a storage transform (quantizer or layerwise cast): data only.
// The loaded plugins report it through the plugin ABI (plugin_quantizers()); a built-in table of
// the stock quantizers stands in when the planner is given no plugins (docs/planner.md,
// "Quantizer descriptions").
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "dmem/strategy.hpp"
#include "dmem/tensor.hpp"

namespace dmem {
inline namespace v1 {

/// Bitmask of places code can run or data can rest.
enum DeviceMask : std::uint32_t {
  kDeviceNone = 0,
  kDeviceCpu = 1u << 0,
  kDeviceCuda = 1u << 1,
};
/// Bitmask of memory tiers packed data may rest in.
enum TierMask : std::uint32_t {
  kTierNone = 0,
  kTierVram = 1u << 0,
  kTierPinned = 1u << 1,
  kTierPageable = 1u << 2,
  kTierDisk = 1u << 3,
};

/// Quality tiers. The values 0..8 are the plugin ABI's DMEM_PLUGIN_QUALITY_* values and never
/// change; tiers after q2 are appended (host-side only until the ABI carries them). The values
/// are identities, not the order: `quality_rank()` gives the order (docs/planner.md, "Quality
/// tiers"): native > int8 ≈ q8_0 > fp8 (weight-only e4m3) > q6_k ≈ fp8 GEMM ≈ fp8 e5m2 >
/// q5_k > nf4 ≈ q4_k > q4_0 > q3 > q2.
enum class QualityTier : std::uint8_t {
  native = 0,
  fp8 = 1,   ///< fp8 e4m3 weights, computed in the 16-bit compute dtype (weight-only)
  int8 = 2,  ///< 8-bit integers with fine scales: LLM.int8, GGUF q8_0
  q6 = 3,
  q5 = 4,
  q4 = 5,
  q4_low = 6,
  q3 = 7,
  q2 = 8,
  fp8_gemm = 9,   ///< fp8 weights *and* activations (an fp8 GEMM)
  fp8_e5m2 = 10,  ///< fp8 e5m2 weights: two mantissa bits
};
/// Position of a tier in the quality order, 0 = best; equal ranks are equally good.
[[nodiscard]] int quality_rank(QualityTier tier) noexcept;
[[nodiscard]] std::string_view quality_name(QualityTier tier) noexcept;

struct QuantizerCaps {
  std::string id;                            ///< "dmem.quantizer.nf4"
  std::string variant;                       ///< "q4_k" for gguf; empty otherwise
  std::string display;                       ///< "nf4", "int8", "gguf q4_k", "fp8 e4m3 (cast)"
  std::uint32_t exec_devices = kDeviceCuda;  ///< where its kernels run
  std::uint32_t storage_tiers = kTierVram;   ///< where packed data may rest
  bool moves_packed = true;                  ///< offloading moves packed data (not dequantized)
  std::uint32_t min_sm =
      0;  ///< lowest compute capability for its kernels (e.g. 89 for fp8 compute)
  std::vector<std::uint32_t> cuda_archs;  ///< SASS/PTX archs it was built for; empty = any
  QualityTier quality = QualityTier::native;
  double speed_factor = 1.0;  ///< step time multiplier vs bf16 on the same device
  bool is_cast = false;       ///< a layerwise cast, not a quantizer
  std::vector<std::pair<std::string, std::string>> params;  ///< parameters it was described with
  std::vector<DType> input_dtypes;  ///< dtypes it quantizes; empty = any (the built-in table)
  std::uint32_t block_size = 0;     ///< elements per quantization block; 0 = not block-wise
  bool needs_cublaslt = false;      ///< its CUDA kernels call cuBLASLt
  /// Exact stored bytes of a tensor as the plugin reports them (nullopt: it cannot store that
  /// tensor, which then keeps its bytes). Empty for the built-in table, whose formulas apply.
  std::function<std::optional<std::uint64_t>(const TensorInfo&)> stored_bytes;
};

class PluginRegistry;

/// The stock quantizers and casts as described to the planner when it is given no plugins (nf4,
/// nf4 double quant, bnb int8, gguf q8_0/q6_k/q5_k/q4_k/q4_0, fp8 e4m3/e5m2 casting, the 16-bit
/// downcast and fp8 GEMM).
[[nodiscard]] const std::vector<QuantizerCaps>& builtin_quantizers() noexcept;

/// The descriptions in effect on this thread: those make_plans() and validate() build from
/// PlanOptions::plugins while they run, otherwise builtin_quantizers().
[[nodiscard]] const std::vector<QuantizerCaps>& quantizer_table() noexcept;

/// The planner's descriptions built from the registered quantizer plugins: one per configuration
/// (for a plugin the built-in table knows, each parameter set it lists for that id; for any other,
/// its default configuration), with the capabilities the plugin's instance reports and its exact
/// stored_bytes, then the transforms the core performs itself (layerwise fp8 and 16-bit casts,
/// fp8 GEMM; a plugin flagged as a cast adds nothing). A configuration the plugin refuses is left
/// out.
[[nodiscard]] std::vector<QuantizerCaps> plugin_quantizers(const PluginRegistry& plugins) noexcept;

/// The described quantizer with this id and variant (empty variant: the first with the id) in
/// quantizer_table(); nullptr when none.
[[nodiscard]] const QuantizerCaps* find_quantizer(std::string_view id,
                                                  std::string_view variant = {}) noexcept;

/// The description a component's storage resolves to in quantizer_table(): the fp8 cast for
/// layerwise casting, the quantizer whose parameters match for a quantized storage (parameters
/// it was not described with are ignored), nullptr for native storage or an unknown quantizer id.
[[nodiscard]] const QuantizerCaps* storage_caps(const Storage& storage) noexcept;
/// Same, looked up in `table` (plugins' descriptions, or crafted ones in tests).
[[nodiscard]] const QuantizerCaps* storage_caps(const Storage& storage,
                                                const std::vector<QuantizerCaps>& table) noexcept;

/// Exact stored bytes of `tensor` under the described quantizer (packed data + scales + state);
/// tensors the quantizer leaves alone (not a linear weight, a dtype outside input_dtypes, one the
/// plugin cannot store) keep their bytes. For a cast
/// (`is_cast`) the flag means "layerwise casting applies to this tensor" (castable).
[[nodiscard]] std::uint64_t quantized_bytes(const QuantizerCaps& caps, const TensorInfo& tensor,
                                            bool is_linear_weight) noexcept;

}  // namespace v1
}  // namespace dmem
