// A Session on a pre-quantized checkpoint: each weight stored in its ecosystem's keys gets the
// plugin instance that decodes it (one per format and parameters), and the layout stores its
// gathered bytes as that plugin's packed tensor (docs/runtime.md, "Pre-quantized checkpoints").
#include <string>
#include <utility>
#include <vector>

#include "runtime/session_impl.hpp"

namespace dmem {
inline namespace v1 {
namespace {

Status in_component(const std::string& component, const Status& s) {
  std::string what = "component '";
  what += component;
  what += "': ";
  what += s.message();
  Status out = Status(s.code(), std::move(what)).with_rule(s.rule()).with_hint(s.hint());
  if (!s.file().empty()) out.with_file(s.file());
  if (!s.tensor().empty()) out.with_tensor(s.tensor());
  return out;
}

}  // namespace

const PluginRegistry* Session::Impl::registry() noexcept {
  if (options.plugins != nullptr) return options.plugins;
  if (!own_plugins) {
    own_plugins = std::make_unique<PluginRegistry>();
    (void)own_plugins->discover();
  }
  return own_plugins.get();
}

Status Session::Impl::open_prequantized(const Strategy& wanted) noexcept {
  prequant.assign(wanted.components.size(), {});
  std::vector<std::string> keys;  // plugin and parameters of each prequant_quantizers entry
  for (std::size_t i = 0; i < wanted.components.size(); ++i) {
    const ComponentStrategy& cs = wanted.components[i];
    const Component* comp = model.find(cs.component);
    if (comp == nullptr) continue;  // make_layout names it
    bool on_disk = !comp->tensors.empty();
    for (const TensorInfo& t : comp->tensors) on_disk = on_disk && t.file < comp->files.size();
    if (!on_disk) continue;  // make_layout says why
    auto source = TensorSource::open(*comp);
    if (!source) return source.status();
    auto found = detail::find_prequantized(*comp, *source);
    if (!found) return in_component(cs.component, found.status());
    std::vector<detail::PrequantWeight> kept;
    for (detail::PrequantWeight& w : *found) {
      const bool gguf = w.kind == detail::PrequantKind::gguf;
      const bool on_gpu = options.device == DeviceKind::cuda;
      if (on_gpu && gguf) continue;  // GGML blocks stay as stored: the device decodes them itself
      std::string key = w.plugin;
      for (const auto& [k, v] : w.params) key.append(" ").append(k).append("=").append(v);
      std::size_t index = 0;
      while (index < keys.size() && keys[index] != key) ++index;
      if (index == keys.size()) {
        auto q = registry()->create_quantizer(w.plugin, w.params);
        if (!q) {
          // GGML blocks without the gguf plugin stay as stored (the core decodes them).
          if (gguf) continue;
          std::string what = "'";
          what += w.weight->name;
          what += "' is stored as ";
          what += w.format;
          what += " and needs ";
          what += w.plugin;
          what += ": ";
          what += q.status().message();
          Status s = Status(q.status().code(), std::move(what))
                         .with_tensor(w.weight->name)
                         .with_rule(q.status().rule())
                         .with_hint(q.status().hint());
          return in_component(cs.component, s);
        }
        if (on_gpu && (q->caps().exec_devices & kDeviceCuda) == 0) {
          // Unpacked before each layer by the plugin's CUDA kernel (packed_linear.cpp).
          return in_component(
              cs.component,
              Status(Errc::unsupported, std::string("'") + w.weight->name + "' is stored as " +
                                            w.format + std::string(", whose quantizer ") +
                                            w.plugin +
                                            " has no CUDA kernels, and this session computes "
                                            "on the GPU")
                  .with_tensor(w.weight->name)
                  .with_rule("runtime.quantizer.device")
                  .with_hint("run with --device cpu, or convert the original weights to a "
                             "format with CUDA kernels (nf4, q8_0)"));
        }
        if (!on_gpu && (q->caps().exec_devices & kDeviceCpu) == 0) {
          return in_component(
              cs.component,
              Status(Errc::unsupported, std::string("'") + w.weight->name + "' is stored as " +
                                            w.format + std::string(", whose quantizer ") +
                                            w.plugin +
                                            " executes on CUDA only, and this session computes "
                                            "on the CPU")
                  .with_tensor(w.weight->name)
                  .with_rule("runtime.quantizer.device")
                  .with_hint("convert the original weights to a format with CPU kernels "
                             "(`dmem convert -q COMPONENT=q8_0` or nf4)"));
        }
        keys.push_back(std::move(key));
        prequant_quantizers.push_back(std::move(q.value()));
      }
      const QuantizerInstance& q = prequant_quantizers[index];
      w.quantizer = static_cast<std::uint32_t>(index);
      // The quantizer sees the original dtype when it takes it (as when it packed the weight
      // itself), f32 otherwise; the packed bytes are the same for every input dtype.
      if (!q.accepts(w.logical.dtype)) w.logical.dtype = DType::f32;
      if (Status s = detail::plan_pieces(w, q, *source); !s) return in_component(cs.component, s);
      kept.push_back(std::move(w));
    }
    prequant[i] = std::move(kept);
  }
  return Status::ok();
}

const QuantizerInstance* Session::Impl::packed_quantizer(std::uint32_t c,
                                                         std::string_view weight) const noexcept {
  const detail::ComponentLayout& cl = layout.components[c];
  const auto dot = weight.rfind('.');
  auto it = cl.leaf_tensors.find(std::string(weight.substr(0, dot)));
  if (it != cl.leaf_tensors.end()) {
    for (std::uint32_t ti : it->second) {
      const detail::TensorSlot& slot = layout.tensors[ti];
      if (slot.prequant == nullptr || slot.info->name != weight) continue;
      return &prequant_quantizers[slot.prequant->quantizer];
    }
  }
  return c < quantizers.size() && quantizers[c].valid() ? &quantizers[c] : nullptr;
}

}  // namespace v1
}  // namespace dmem
