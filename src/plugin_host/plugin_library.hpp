// Internal: loading a plugin shared library by path and handing back what passed the host checks
// (abi_check.hpp). Boost.DLL stays inside plugin_library.cpp.
#pragma once

#include <memory>
#include <string>

#include "dmem/plugin/abi.h"
#include "dmem/status.hpp"

namespace dmem::detail {

/// A plugin library that was loaded and accepted. Every object made from it must hold `library`:
/// it keeps the code mapped. Libraries are also never unloaded (the loader keeps a reference until
/// the process ends), so a plugin's static data and threads cannot outlive its code at exit.
struct LoadedPlugin {
  std::shared_ptr<const void> library;
  std::string path;
  const dmem_plugin_probe_info* probe = nullptr;
  const dmem_plugin_descriptor* descriptor = nullptr;
};

/// The default host table: process-lifetime, since a plugin may keep the pointer for as long as
/// its library is loaded (forever). Given this table, activation passes the plugin its own copy
/// with the log callback instead (plugin_log.hpp); any other table is passed as it is.
[[nodiscard]] const dmem_plugin_host& plugin_host_table() noexcept;

/// Checks a plugin's probe, calls its entry and checks the descriptor: what load_plugin does
/// once the symbols are found, and all an in-binary plugin (static table, add_plugin) goes
/// through. `source` names it in messages. Serialised with load_plugin.
[[nodiscard]] Result<LoadedPlugin> activate_plugin(dmem_plugin_probe_fn probe,
                                                   dmem_plugin_entry_fn entry,
                                                   const dmem_plugin_host& host,
                                                   const std::string& source) noexcept;

/// Loads the library at `path`, checks its probe before running any other plugin code, calls
/// dmem_plugin_entry with `host` (which must outlive the plugin) and checks the descriptor.
/// Loads are serialised. Rule ids: plugin.load (not loadable), plugin.symbol (an entry symbol is
/// missing), plugin.entry (dmem_plugin_entry failed), and those of check_probe/check_descriptor.
[[nodiscard]] Result<LoadedPlugin> load_plugin(const std::string& path,
                                               const dmem_plugin_host& host) noexcept;

}  // namespace dmem::detail
