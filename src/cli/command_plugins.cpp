#include "cli/command_plugins.hpp"

#include "dmem/engine.hpp"
#include "dmem/quantizer.hpp"

namespace dmem::cli {

CommandPlugins::CommandPlugins() {
  (void)registry_.discover();
  table_.emplace(for_planner());
}

const PluginRegistry* CommandPlugins::for_planner() const noexcept {
  for (const PluginInfo& p : registry_.plugins())
    if (p.kind == "quantizer") return &registry_;
  return nullptr;
}

Status apply_engine(std::string_view name, PlanOptions& options,
                    std::optional<detail::QuantizerScope>& table) {
  auto engine = engine_from_name(name);
  if (!engine) return engine.status();
  options.engine = *engine;
  if (*engine != Engine::dmem) {
    options.plugins = nullptr;
    table.emplace(&builtin_quantizers());
  }
  return Status::ok();
}

}  // namespace dmem::cli
