#include "cli/command_plugins.hpp"

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

}  // namespace dmem::cli
