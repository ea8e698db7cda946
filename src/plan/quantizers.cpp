// The stock quantizers and casts as the planner and validator see them when no plugins are given,
// and their exact stored bytes per tensor (layouts in reference/FORMATS.md §2.5, §3.5, §4.3, §5).
// With plugins, plugin_quantizers() (quantizer_table.cpp) builds the same structure from their
// capabilities and the planner installs it as this thread's table.
#include <algorithm>
#include <charconv>
#include <string>

#include "dmem/quantizer.hpp"
#include "plan/quantizer_table.hpp"

namespace dmem {
inline namespace v1 {

namespace {

constexpr std::uint32_t kAnyTier = kTierVram | kTierPinned | kTierPageable | kTierDisk;
constexpr std::uint32_t kCpuCuda = kDeviceCpu | kDeviceCuda;

QuantizerCaps caps(std::string id, std::string variant, std::string display, std::uint32_t exec,
                   std::uint32_t tiers, QualityTier quality, double speed,
                   std::vector<std::pair<std::string, std::string>> params) {
  QuantizerCaps c;
  c.id = std::move(id);
  c.variant = std::move(variant);
  c.display = std::move(display);
  c.exec_devices = exec;
  c.storage_tiers = tiers;
  c.quality = quality;
  c.speed_factor = speed;
  c.params = std::move(params);
  return c;
}

std::vector<QuantizerCaps> make_builtins() {
  std::vector<QuantizerCaps> v;
  // bitsandbytes 4-bit NF4: dequantized per linear on the fly; packed data may rest anywhere
  // and compute on CPU or CUDA (it supports device moves).
  v.push_back(caps("dmem.quantizer.nf4", "nf4", "nf4", kCpuCuda, kAnyTier, QualityTier::q4, 1.00,
                   {{"blocksize", "64"}, {"double_quant", "false"}}));
  v.push_back(caps("dmem.quantizer.nf4", "nf4-dq", "nf4 (double quant)", kCpuCuda, kAnyTier,
                   QualityTier::q4, 1.02, {{"blocksize", "64"}, {"double_quant", "true"}}));
  // LLM.int8: the int8 GEMM runs only on CUDA and the weights are not moved off the device
  // (diffusers: int8 + model CPU offload fails), so packed data rests only in VRAM.
  v.push_back(caps("dmem.quantizer.bnb_int8", "int8", "int8", kDeviceCuda, kTierVram,
                   QualityTier::int8, 3.70, {}));
  // GGUF block quants, blocks along the input dimension; CPU and CUDA kernels.
  const struct {
    const char* type;
    QualityTier tier;
    double speed;
  } gguf[] = {{"q8_0", QualityTier::int8, 1.55},
              {"q6_k", QualityTier::q6, 3.50},
              {"q5_k", QualityTier::q5, 3.50},
              {"q4_k", QualityTier::q4, 3.50},
              {"q4_0", QualityTier::q4_low, 3.00}};
  for (const auto& g : gguf)
    v.push_back(caps("dmem.quantizer.gguf", g.type, std::string("gguf ") + g.type, kCpuCuda,
                     kAnyTier, g.tier, g.speed, {{"type", g.type}}));
  // Layerwise fp8 casting: stored in fp8, upcast to the compute dtype per layer, so it needs
  // no fp8 tensor cores and runs anywhere.
  for (const char* fmt : {"e4m3", "e5m2"}) {
    // e5m2 keeps two mantissa bits: coarser weights than e4m3 (docs/planner.md).
    const QualityTier q =
        std::string_view(fmt) == "e4m3" ? QualityTier::fp8 : QualityTier::fp8_e5m2;
    std::string display = "fp8 ";
    display += fmt;
    display += " (cast)";
    auto c = caps("dmem.quantizer.fp8_cast", fmt, display, kCpuCuda, kAnyTier, q, 1.18,
                  {{"format", fmt}});
    c.is_cast = true;
    v.push_back(std::move(c));
  }
  // 16-bit downcast of wider (fp32) weights, stored in the compute dtype: the GEMM sees the same
  // numbers as when it upcasts fp32 per layer, so the quality is native's.
  for (const char* fmt : {"bf16", "f16"}) {
    std::string display = fmt;
    display += " (downcast)";
    auto c = caps("dmem.quantizer.cast16", fmt, display, kCpuCuda, kAnyTier, QualityTier::native,
                  1.0, {{"format", fmt}});
    c.is_cast = true;
    v.push_back(std::move(c));
  }
  // fp8 compute: weights stay fp8 and feed an fp8 GEMM (cuBLASLt), which needs SM >= 8.9. The
  // activations are quantized to fp8 too, which costs accuracy the weight-only cast does not.
  auto fp8 = caps("dmem.quantizer.fp8", "e4m3", "fp8 e4m3 (fp8 GEMM)", kDeviceCuda, kAnyTier,
                  QualityTier::fp8_gemm, 0.70, {{"format", "e4m3"}});
  fp8.min_sm = 89;
  v.push_back(std::move(fp8));
  return v;
}

// The table make_plans()/validate() put in effect on this thread (QuantizerScope); null: built-in.
thread_local const std::vector<QuantizerCaps>* t_table = nullptr;

std::string_view param(const std::vector<std::pair<std::string, std::string>>& params,
                       std::string_view key) {
  for (const auto& [k, v] : params)
    if (k == key) return v;
  return {};
}

std::uint64_t param_u64(const QuantizerCaps& c, std::string_view key, std::uint64_t fallback) {
  const std::string_view s = param(c.params, key);
  std::uint64_t v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (s.empty() || ec != std::errc() || p != s.data() + s.size() || v == 0) return fallback;
  return v;
}

std::uint64_t ceil_div(std::uint64_t a, std::uint64_t b) {
  return (a + b - 1) / b;
}

// Length of Python's json.dumps of the bnb 4-bit quant state (FORMATS §3.5), which is stored as
// a uint8 tensor. The nested offset is a data-dependent float; its repr is taken as 20
// characters, the usual length of a float32 mean printed as a Python float ("0.0123...").
std::uint64_t nf4_state_json_bytes(const TensorInfo& t, std::uint64_t blocksize, bool nested) {
  std::string dtype = "bfloat16";
  if (t.dtype == DType::f16)
    dtype = "float16";
  else if (t.dtype == DType::f32)
    dtype = "float32";
  std::string s = "{\"quant_type\": \"nf4\", \"blocksize\": " + std::to_string(blocksize) +
                  ", \"dtype\": \"" + dtype + "\", \"shape\": [";
  for (std::size_t i = 0; i < t.shape.size(); ++i)
    s += (i ? ", " : "") + std::to_string(t.shape[i]);
  s += "]";
  if (nested)
    s += ", \"nested_blocksize\": 256, \"nested_dtype\": \"float32\", \"nested_offset\": " +
         std::string(20, '0');
  s += "}";
  return s.size();
}

}  // namespace

std::string_view quality_name(QualityTier tier) noexcept {
  switch (tier) {
    case QualityTier::native:
      return "native";
    case QualityTier::fp8:
      return "fp8";
    case QualityTier::int8:
      return "int8";
    case QualityTier::q6:
      return "q6";
    case QualityTier::q5:
      return "q5";
    case QualityTier::q4:
      return "q4";
    case QualityTier::q4_low:
      return "q4_low";
    case QualityTier::q3:
      return "q3";
    case QualityTier::q2:
      return "q2";
    case QualityTier::fp8_gemm:
      return "fp8_gemm";
    case QualityTier::fp8_e5m2:
      return "fp8_e5m2";
  }
  return "unknown";
}

int quality_rank(QualityTier tier) noexcept {
  switch (tier) {
    case QualityTier::native:
      return 0;
    case QualityTier::int8:
      return 1;
    case QualityTier::fp8:
      return 2;
    case QualityTier::q6:
    case QualityTier::fp8_gemm:
    case QualityTier::fp8_e5m2:
      return 3;
    case QualityTier::q5:
      return 4;
    case QualityTier::q4:
      return 5;
    case QualityTier::q4_low:
      return 6;
    case QualityTier::q3:
      return 7;
    case QualityTier::q2:
      return 8;
  }
  return 9;
}

const std::vector<QuantizerCaps>& builtin_quantizers() noexcept {
  static const std::vector<QuantizerCaps> table = make_builtins();
  return table;
}

const std::vector<QuantizerCaps>& quantizer_table() noexcept {
  return t_table != nullptr ? *t_table : builtin_quantizers();
}

const QuantizerCaps* find_quantizer(std::string_view id, std::string_view variant) noexcept {
  for (const auto& c : quantizer_table())
    if (c.id == id && (variant.empty() || c.variant == variant)) return &c;
  return nullptr;
}

const QuantizerCaps* storage_caps(const Storage& storage,
                                  const std::vector<QuantizerCaps>& table) noexcept {
  if (storage.kind == StorageKind::native) return nullptr;
  if (storage.kind == StorageKind::layerwise_cast) {
    std::string_view fmt = "e4m3";
    if (storage.cast_dtype == DType::f8_e5m2)
      fmt = "e5m2";
    else if (storage.cast_dtype == DType::bf16)
      fmt = "bf16";
    else if (storage.cast_dtype == DType::f16)
      fmt = "f16";
    else if (storage.cast_dtype != DType::f8_e4m3)
      return nullptr;
    for (const auto& c : table)
      if (c.is_cast && c.variant == fmt) return &c;
    return nullptr;
  }
  // Quantized: the first description with this id whose parameters agree with the strategy's.
  for (const auto& c : table) {
    if (c.id != storage.quantizer) continue;
    bool agree = true;
    for (const auto& [k, v] : storage.params) {
      const std::string_view mine = param(c.params, k);
      if (!mine.empty() && mine != v) agree = false;
    }
    if (agree) return &c;
  }
  return nullptr;
}

const QuantizerCaps* storage_caps(const Storage& storage) noexcept {
  return storage_caps(storage, quantizer_table());
}

std::uint64_t quantized_bytes(const QuantizerCaps& c, const TensorInfo& t,
                              bool is_linear_weight) noexcept {
  if (!is_linear_weight) return t.nbytes;
  const std::uint64_t n = t.elements();
  if (n == 0) return t.nbytes;
  // A plugin's description: its own exact size of the tensor as the loader hands it over (in its
  // dtype when the plugin takes it, else widened to f32); what it cannot store stays as it is.
  if (c.stored_bytes) {
    auto takes = [&](DType d) {
      return c.input_dtypes.empty() ||
             std::find(c.input_dtypes.begin(), c.input_dtypes.end(), d) != c.input_dtypes.end();
    };
    TensorInfo input = t;
    if (!takes(t.dtype)) {
      const bool widens = t.dtype == DType::f16 || t.dtype == DType::bf16;  // as the loader
      if (!widens || !takes(DType::f32)) return t.nbytes;
      input.dtype = DType::f32;
    }
    return c.stored_bytes(input).value_or(t.nbytes);
  }
  if (c.is_cast || c.id == "dmem.quantizer.fp8") {
    // One byte per element (two for a 16-bit downcast); a tensor already that narrow stays.
    const std::uint64_t width = c.id == "dmem.quantizer.cast16" ? 2 : 1;
    if (t.nbytes <= n * width) return t.nbytes;
    return n * width + (c.is_cast ? 0 : 4);  // fp8 GEMM keeps one fp32 scale per tensor
  }
  if (c.id == "dmem.quantizer.nf4") {
    const std::uint64_t bs = param_u64(c, "blocksize", 64);
    const bool nested = param(c.params, "double_quant") == "true";
    const std::uint64_t blocks = ceil_div(n, bs);
    std::uint64_t bytes = ceil_div(n, 2) + 16 * 4;  // packed codes + quant_map
    if (nested)
      bytes += blocks + 4 * ceil_div(blocks, 256) + 256 * 4;  // u8 absmax, nested absmax, map
    else
      bytes += 4 * blocks;  // f32 absmax
    return bytes + nf4_state_json_bytes(t, bs, nested);
  }
  if (c.id == "dmem.quantizer.bnb_int8") {
    const std::uint64_t rows = t.shape.empty() ? 1 : t.shape.front();
    return n + 4 * rows + 1;  // int8 CB + f32 SCB per output row + weight_format
  }
  if (c.id == "dmem.quantizer.gguf") {
    const auto type = dtype_from_name(c.variant);
    if (!type) return t.nbytes;
    const std::uint64_t ne0 = t.shape.empty() ? n : t.shape.back();
    // GGUF quantizes rows along the input dimension; a row that is not a whole number of blocks
    // cannot be stored in this type, and the tensor keeps its native dtype (as converters do).
    if (ne0 % dtype_info(*type).block_elems != 0) return t.nbytes;
    const auto b = dtype_bytes(*type, n);
    return b ? *b : t.nbytes;
  }
  return t.nbytes;
}

}  // namespace v1
}  // namespace dmem

namespace dmem::detail {

QuantizerScope::QuantizerScope(const std::vector<QuantizerCaps>* table) noexcept
    : previous_(t_table) {
  t_table = table;
}

QuantizerScope::~QuantizerScope() {
  t_table = previous_;
}

}  // namespace dmem::detail
