// Internal: which files the registry tries, in which order (docs/plugin-guide.md, "Where plugins
// are found"). Pure over its inputs but for listing directories, so tests can fake the
// environment, the install directory and the executable's directory.
#pragma once

#include <string>
#include <vector>

#include "dmem/plugin_info.hpp"
#include "dmem/plugin_registry.hpp"

namespace dmem::detail {

/// Where the candidates come from.
struct SearchRoots {
  std::string environment;     ///< the value of DMEM_PLUGIN_PATH ("" when unset)
  std::string installed_dir;   ///< <libdir>/dmem/plugins of the install prefix
  std::string executable_dir;  ///< the directory of the running executable ("" when unknown)
};

/// The roots of this process: DMEM_PLUGIN_PATH, the configured install directory, /proc/self/exe.
[[nodiscard]] SearchRoots process_search_roots() noexcept;

/// Every place `search` names, in order: explicit paths, DMEM_PLUGIN_PATH entries, the installed
/// directory, <executable dir>/plugins. Each entry is a directory or a file.
[[nodiscard]] std::vector<std::string> search_entries(const PluginSearch& search,
                                                      const SearchRoots& roots) noexcept;

/// What a search found: the files to load, in order, and the files (or missing places) that
/// were not tried, with why.
struct Candidates {
  std::vector<std::string> files;
  std::vector<SkippedPlugin> ignored;
};

/// Lists the candidate files. A file named explicitly (or in DMEM_PLUGIN_PATH) is tried whatever
/// its name; in a directory only `dmem_plugin_*.so` is tried, sorted by name, and any other
/// `.so` is reported (rule plugin.name) without being opened. A missing explicit or
/// DMEM_PLUGIN_PATH entry is reported (plugin.path); a missing installed or executable directory
/// is not. A file reached twice is tried once.
[[nodiscard]] Candidates find_candidates(const PluginSearch& search,
                                         const SearchRoots& roots) noexcept;

}  // namespace dmem::detail
