// Internal: the plugins a DMEM_STATIC_PLUGINS build links in. The definition is generated at
// configure time (cmake/DmemStaticPlugins.cmake, from static_table.cpp.in): one entry per plugin
// target made with dmem_add_plugin in static mode; empty otherwise. No static initialiser
// registers anything: the registry reads this table when asked (PluginSearch::static_table).
#pragma once

#include <span>

#include "dmem/plugin_registry.hpp"

namespace dmem::detail {

[[nodiscard]] std::span<const PluginEntry> static_plugins() noexcept;

}  // namespace dmem::detail
