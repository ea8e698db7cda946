// What the plugin registry knows about a plugin it accepted, and about a candidate it skipped.
// Plain data: `dmem plugins` prints it, the planner reads the capabilities.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "dmem/quantizer.hpp"
#include "dmem/status.hpp"

namespace dmem {
inline namespace v1 {

/// How a plugin got into the process.
enum class PluginSource : std::uint8_t {
  file,  ///< a shared library loaded by path (explicit, DMEM_PLUGIN_PATH, installed, beside the
         ///< executable)
  static_table,  ///< linked in by a DMEM_STATIC_PLUGINS build, listed in its generated table
  built_in,      ///< handed to PluginRegistry::add_plugin by the host
};
/// "file", "static" or "built-in".
[[nodiscard]] std::string_view plugin_source_name(PluginSource source) noexcept;

/// A plugin the registry accepted. Capabilities are those of an instance made with no parameters.
struct PluginInfo {
  std::string id;       ///< "dmem.quantizer.nf4"
  std::string display;  ///< the descriptor's display name
  std::string version;  ///< the plugin's own version
  std::uint16_t abi_major = 0;
  std::uint16_t abi_minor = 0;
  std::string kind;  ///< "quantizer"
  PluginSource source = PluginSource::file;
  std::string path;  ///< the library's path; for static and built-in plugins the entry's name
  QuantizerCaps caps;
  std::uint64_t input_dtypes = 0;  ///< DMEM_PLUGIN_DTYPE_BIT of each accepted input dtype
  std::uint32_t flags = 0;         ///< DMEM_PLUGIN_QFLAG_* as the plugin reported them
  std::uint32_t block_size = 0;    ///< elements per quantization block; 0 = not block-wise
  std::vector<std::string> notes;  ///< accepted, but worth saying (no kernels for this GPU, ...)
};

/// A candidate the registry did not accept, and why (rule id, file, hint in the Status).
struct SkippedPlugin {
  std::string path;  ///< the file, or the static/built-in entry's name
  Status why;
};

}  // namespace v1
}  // namespace dmem
