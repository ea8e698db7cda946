// Internal: a configured plugin quantizer behind QuantizerInstance — the C function table, the
// instance it made, its library (kept loaded) and a lock (the ABI promises plugins that calls on
// one instance never overlap).
#pragma once

#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "dmem/plugin/abi.h"
#include "dmem/plugin_info.hpp"
#include "dmem/quantizer_instance.hpp"

namespace dmem {
inline namespace v1 {

struct QuantizerInstance::Impl {
  ~Impl();
  std::shared_ptr<const void> library;
  const dmem_quantizer_vtable* vtable = nullptr;
  void* instance = nullptr;
  QuantizerCaps caps;
  std::uint64_t input_dtypes = 0;
  std::string id;
  std::mutex mu;
};

}  // namespace v1
}  // namespace dmem

namespace dmem::detail {

/// The plugin dtype code of `dtype`, or 0 when the ABI has none.
[[nodiscard]] std::uint32_t plugin_dtype(DType dtype) noexcept;

[[nodiscard]] Result<std::shared_ptr<QuantizerInstance::Impl>> create_quantizer_impl(
    const PluginInfo& info, const dmem_quantizer_vtable& vtable,
    std::shared_ptr<const void> library,
    const std::vector<std::pair<std::string, std::string>>& params) noexcept;

}  // namespace dmem::detail
