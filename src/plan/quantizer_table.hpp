// Internal: which quantizer descriptions are in effect on a thread. make_plans() and validate()
// install the plugins' table for PlanOptions::plugins; the CLI keeps it installed while it also
// reads strategies and renders plans, so every lookup (storage_caps, find_quantizer, strategy
// JSON) sees the same table (docs/planner.md, "Quantizer descriptions").
#pragma once

#include <optional>
#include <vector>

#include "dmem/quantizer.hpp"

namespace dmem::detail {

/// Makes `table` this thread's quantizer_table() while it lives; scopes nest.
class QuantizerScope {
 public:
  explicit QuantizerScope(const std::vector<QuantizerCaps>* table) noexcept;
  ~QuantizerScope();
  QuantizerScope(const QuantizerScope&) = delete;
  QuantizerScope& operator=(const QuantizerScope&) = delete;

 private:
  const std::vector<QuantizerCaps>* previous_;
};

/// The descriptions built from `plugins` (plugin_quantizers()), in effect while this lives;
/// nullptr changes nothing (the table already in effect stays).
class PluginQuantizers {
 public:
  explicit PluginQuantizers(const PluginRegistry* plugins) noexcept;
  PluginQuantizers(const PluginQuantizers&) = delete;
  PluginQuantizers& operator=(const PluginQuantizers&) = delete;

 private:
  std::vector<QuantizerCaps> table_;
  std::optional<QuantizerScope> scope_;
};

}  // namespace dmem::detail
