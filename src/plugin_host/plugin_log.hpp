// Internal: plugin messages. Each plugin is given its own host table whose `user` names it, so a
// message logged through dmem::plugin::log() reaches dmem's logger as "[<plugin id>] message".
// Plugin libraries are loaded once per process and keep their table forever, so both the tables
// and the logger they feed are process-wide (PluginRegistry::set_plugin_log sets the logger).
#pragma once

#include <string_view>

#include "dmem/log.hpp"
#include "dmem/plugin/abi.h"

namespace dmem::detail {

/// The host table for the plugin with this id: process-lifetime, one per id.
[[nodiscard]] const dmem_plugin_host& plugin_host_for(std::string_view id) noexcept;

/// Where plugin messages go from now on (level and callback); replaces the previous logger.
void set_plugin_log(LogConfig config) noexcept;

}  // namespace dmem::detail
