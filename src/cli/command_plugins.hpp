// The plugins `dmem plan`, `dmem validate` and `dmem run` plan with: discovered where `dmem
// plugins` looks, and their quantizer descriptions in effect for the whole command (reading a
// strategy, planning, rendering the plans). When no quantizer plugin is found, the built-in table
// stays (docs/planner.md, "Quantizer descriptions").
#pragma once

#include <optional>
#include <string_view>

#include "dmem/plan.hpp"
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

/// `--engine NAME` on the planner's options. An engine other than dmem runs the formats with
/// its own kernels (ComfyUI-GGUF and ggml-cuda run GGUF on the GPU), so it plans with the
/// built-in quantizer table, which `table` keeps in effect, instead of dmem's plugins.
[[nodiscard]] Status apply_engine(std::string_view name, PlanOptions& options,
                                  std::optional<detail::QuantizerScope>& table);

}  // namespace dmem::cli
