// The plugins `dmem plan`, `dmem validate` and `dmem run` plan with: discovered where `dmem
// plugins` looks, and their quantizer descriptions in effect for the whole command (reading a
// strategy, planning, rendering the plans). When no quantizer plugin is found, the built-in table
// stays (docs/planner.md, "Quantizer descriptions").
#pragma once

#include <optional>

#include "dmem/plugin_registry.hpp"
#include "plan/quantizer_table.hpp"

namespace dmem::cli {

class CommandPlugins {
 public:
  CommandPlugins();
  CommandPlugins(const CommandPlugins&) = delete;
  CommandPlugins& operator=(const CommandPlugins&) = delete;

  [[nodiscard]] const PluginRegistry& registry() const noexcept { return registry_; }
  /// What PlanOptions::plugins gets: the registry, or nullptr when it holds no quantizer.
  [[nodiscard]] const PluginRegistry* for_planner() const noexcept;

 private:
  PluginRegistry registry_;
  std::optional<detail::PluginQuantizers> table_;
};

}  // namespace dmem::cli
