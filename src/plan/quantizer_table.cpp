// plugin_quantizers(): the planner's quantizer descriptions from the registered plugins. Each
// plugin is asked for its capabilities in the configurations the built-in table lists for its id
// (the stock plugins' variants: nf4 with and without double quantization, the gguf types), or in
// its default one; a configuration is described by an instance, which also answers the exact
// stored bytes of every tensor the estimator sizes.
#include <memory>
#include <string>
#include <utility>

#include "dmem/plugin_registry.hpp"
#include "dmem/quantizer_instance.hpp"
#include "plan/quantizer_table.hpp"

namespace dmem {
inline namespace v1 {

namespace {

using Params = std::vector<std::pair<std::string, std::string>>;

// Transforms the core performs itself, kept from the built-in table: layerwise casting (fp8
// e4m3/e5m2 storage, the 16-bit downcast), which the loader and the runtime convert on any
// device, and fp8 GEMM, which no plugin carries yet.
bool core_transform(const QuantizerCaps& c) {
  return c.is_cast || c.id == "dmem.quantizer.fp8";
}

// The dtypes an instance takes, as a list (the ABI's bitmask has no host-side form).
std::vector<DType> accepted_dtypes(const QuantizerInstance& q) {
  std::vector<DType> out;
  for (DType d : {DType::f32, DType::f16, DType::bf16, DType::f64, DType::f8_e4m3, DType::f8_e5m2,
                  DType::i8, DType::u8, DType::i16, DType::i32, DType::i64})
    if (q.accepts(d)) out.push_back(d);
  return out;
}

}  // namespace

std::vector<QuantizerCaps> plugin_quantizers(const PluginRegistry& plugins) noexcept {
  std::vector<QuantizerCaps> out;
  for (const PluginInfo& p : plugins.plugins()) {
    if (p.kind != "quantizer") continue;
    // A plugin's cast (fp8_cast) describes its kernels for pre-cast checkpoints; the planner's
    // layerwise cast is the core's (above).
    if (p.caps.is_cast) continue;
    std::vector<Params> configs;
    for (const QuantizerCaps& b : builtin_quantizers())
      if (b.id == p.id && !b.is_cast) configs.push_back(b.params);
    if (configs.empty()) configs.emplace_back();  // a plugin the table does not know: its default
    for (const Params& params : configs) {
      auto made = plugins.create_quantizer(p.id, params);
      if (!made) continue;  // this build of the plugin refuses the configuration
      auto instance = std::make_shared<QuantizerInstance>(std::move(made.value()));
      QuantizerCaps c = instance->caps();
      bool seen = false;
      for (const QuantizerCaps& o : out) seen = seen || (o.id == c.id && o.variant == c.variant);
      if (seen) continue;
      c.params = params;
      c.input_dtypes = accepted_dtypes(*instance);
      c.stored_bytes = [instance](const TensorInfo& t) -> std::optional<std::uint64_t> {
        auto bytes = instance->stored_bytes(t.dtype, t.shape);
        if (!bytes) return std::nullopt;
        return *bytes;
      };
      out.push_back(std::move(c));
    }
  }
  for (const QuantizerCaps& b : builtin_quantizers())
    if (core_transform(b)) out.push_back(b);
  return out;
}

}  // namespace v1
}  // namespace dmem

namespace dmem::detail {

PluginQuantizers::PluginQuantizers(const PluginRegistry* plugins) noexcept {
  if (plugins == nullptr) return;
  table_ = plugin_quantizers(*plugins);
  scope_.emplace(&table_);
}

}  // namespace dmem::detail
