// A stock quantizer plugin loaded by path and driven through its C table, for the plugin tests:
// load_plugin() as the registry does, instances created with parameters, tensors as ABI structs.
#pragma once

#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "dmem/plugin/abi.h"
#include "plugin_host/plugin_library.hpp"

namespace dmem::test {

/// An ABI error buffer the tests read back.
struct PluginError {
  char text[1024] = {};
  dmem_plugin_error err{sizeof(dmem_plugin_error), sizeof(text), text, 0, 0};
  [[nodiscard]] std::string message() const { return text; }
};

/// A CPU tensor view over `data` (dtype code, shape in PyTorch order).
inline dmem_plugin_tensor plugin_tensor(std::uint32_t dtype, std::vector<std::uint64_t> shape,
                                        void* data, std::uint64_t nbytes,
                                        std::uint32_t device = DMEM_PLUGIN_DEVICE_CPU) {
  dmem_plugin_tensor t{};
  t.struct_size = sizeof(t);
  t.dtype = dtype;
  t.device = device;
  t.rank = static_cast<std::uint32_t>(shape.size());
  for (std::size_t i = 0; i < shape.size(); ++i) t.shape[i] = shape[i];
  t.data = data;
  t.nbytes = nbytes;
  return t;
}

/// One instance of a plugin's quantizer; destroyed with the object.
class PluginQuantizer {
 public:
  PluginQuantizer(const dmem_quantizer_vtable* q, void* instance) : q_(q), inst_(instance) {}
  PluginQuantizer(PluginQuantizer&& o) noexcept
      : q_(o.q_), inst_(std::exchange(o.inst_, nullptr)) {}
  PluginQuantizer(const PluginQuantizer&) = delete;
  PluginQuantizer& operator=(const PluginQuantizer&) = delete;
  PluginQuantizer& operator=(PluginQuantizer&&) = delete;
  ~PluginQuantizer() {
    if (inst_) q_->destroy(inst_);
  }
  [[nodiscard]] const dmem_quantizer_vtable& table() const { return *q_; }
  [[nodiscard]] void* instance() const { return inst_; }
  [[nodiscard]] const dmem_quantizer_caps& caps() const { return *q_->caps(inst_); }

 private:
  const dmem_quantizer_vtable* q_;
  void* inst_;
};

/// The plugin library at `path`, loaded and checked as the registry loads it.
class LoadedQuantizerPlugin {
 public:
  explicit LoadedQuantizerPlugin(const std::string& path) {
    static const dmem_plugin_host host{sizeof(dmem_plugin_host), DMEM_PLUGIN_ABI_MAJOR,
                                       DMEM_PLUGIN_ABI_MINOR, nullptr, nullptr};
    auto loaded = detail::load_plugin(path, host);
    status_ = loaded.status();
    if (loaded.has_value()) plugin_ = std::move(loaded.value());
  }
  [[nodiscard]] const Status& status() const { return status_; }
  [[nodiscard]] const dmem_quantizer_vtable* table() const {
    return plugin_.descriptor ? plugin_.descriptor->quantizer : nullptr;
  }

  /// An instance made with `params`, or nullptr with the status code and message in `rc` and
  /// `error`.
  std::unique_ptr<PluginQuantizer> create(
      const std::vector<std::pair<std::string, std::string>>& params, std::int32_t* rc = nullptr,
      std::string* error = nullptr) const {
    std::vector<const char*> keys, values;
    for (const auto& [k, v] : params) {
      keys.push_back(k.c_str());
      values.push_back(v.c_str());
    }
    const dmem_plugin_params p{sizeof(dmem_plugin_params), static_cast<std::uint32_t>(keys.size()),
                               keys.data(), values.data()};
    PluginError err;
    void* inst = nullptr;
    const std::int32_t code = table()->create(&p, &inst, &err.err);
    if (rc) *rc = code;
    if (error) *error = err.message();
    if (code != DMEM_PLUGIN_OK) return nullptr;
    return std::make_unique<PluginQuantizer>(table(), inst);
  }

 private:
  Status status_;
  detail::LoadedPlugin plugin_;
};

}  // namespace dmem::test
