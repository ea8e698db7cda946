// The plugins a host uses: found on disk (docs/plugin-guide.md, "Where plugins are found"), linked
// in statically, or handed over by the host. Every plugin goes through the same checks, whatever
// its source. A runtime owns one (runtime.add_plugin forwards to it).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "dmem/log.hpp"
#include "dmem/plugin/abi.h"
#include "dmem/plugin_info.hpp"
#include "dmem/quantizer_instance.hpp"
#include "dmem/status.hpp"

namespace dmem {
inline namespace v1 {

/// An in-binary plugin: its two entry functions. DMEM_QUANTIZER_PLUGIN compiled with
/// DMEM_PLUGIN_STATIC_NAME=<name> defines dmem_plugin_probe_<name> and dmem_plugin_entry_<name>;
/// DMEM_PLUGIN_DECLARE_STATIC(<name>) (dmem/plugin/abi.h) declares them.
struct PluginEntry {
  const char* name = "";  ///< shown in messages and `dmem plugins` instead of a path
  dmem_plugin_probe_fn probe = nullptr;
  dmem_plugin_entry_fn entry = nullptr;
};

/// Where discover() looks, in this order; the first plugin with an id wins.
struct PluginSearch {
  std::vector<std::string> paths;  ///< plugin files or directories, searched first
  bool static_table = true;        ///< plugins linked in by DMEM_STATIC_PLUGINS (before any file)
  bool environment = true;         ///< DMEM_PLUGIN_PATH: directories or files, ':'-separated
  bool installed = true;           ///< the installed plugin directory (installed_plugin_dir())
  bool beside_executable = true;   ///< plugins/ in the directory of the running executable
};

/// Registered plugins by id. Plugin libraries are loaded one at a time (process-wide) and never
/// unloaded; what a plugin made keeps its library. Use one registry from one thread at a time.
class PluginRegistry {
 public:
  PluginRegistry() noexcept;
  ~PluginRegistry();
  PluginRegistry(PluginRegistry&&) noexcept;
  PluginRegistry& operator=(PluginRegistry&&) noexcept;
  PluginRegistry(const PluginRegistry&) = delete;
  PluginRegistry& operator=(const PluginRegistry&) = delete;

  /// The GPU's compute capability (89 = 8.9) later loads are checked against: a CUDA-only
  /// plugin without kernels for it is skipped (rule plugin.cuda_arch). 0, the default: no GPU
  /// check.
  void set_device_sm(std::uint32_t sm) noexcept;

  /// Registers every plugin found where `search` says; returns how many were added. A candidate
  /// that fails is recorded in skipped() with its Status, and the search goes on.
  std::size_t discover(const PluginSearch& search = {}) noexcept;

  /// Loads one plugin library by path. A failure is also recorded in skipped().
  [[nodiscard]] Status load(const std::string& path) noexcept;

  /// Registers an in-binary plugin (source "built-in"), through the same checks as a library.
  /// A failure is also recorded in skipped().
  [[nodiscard]] Status add_plugin(const PluginEntry& entry) noexcept;

  [[nodiscard]] const std::vector<PluginInfo>& plugins() const noexcept;
  [[nodiscard]] const std::vector<SkippedPlugin>& skipped() const noexcept;
  /// The registered plugin with this id, or nullptr.
  [[nodiscard]] const PluginInfo* find(std::string_view id) const noexcept;
  /// A quantizer of the registered plugin `id` configured with `params` (rule plugin.create when
  /// the plugin refuses them, plugin.missing when no plugin has that id). Thread-safe use: calls
  /// on one instance are serialised.
  [[nodiscard]] Result<QuantizerInstance> create_quantizer(
      std::string_view id,
      const std::vector<std::pair<std::string, std::string>>& params = {}) const noexcept;
  /// The capabilities of every registered quantizer in its default configuration (the planner's
  /// list, with each configuration, is plugin_quantizers(registry) in dmem/quantizer.hpp).
  [[nodiscard]] std::vector<QuantizerCaps> quantizer_caps() const noexcept;

  /// Where messages that plugins log (dmem::plugin::log) go: `config`'s callback at or above its
  /// level, each as "[<plugin id>] message" from one private spdlog logger. Process-wide, as a
  /// plugin library is loaded once and shared by every registry; the last call wins. Until it is
  /// called, plugin messages are dropped.
  static void set_plugin_log(LogConfig config) noexcept;

  /// The directories discover() would search for `search`, in order (for reports).
  [[nodiscard]] static std::vector<std::string> search_directories(
      const PluginSearch& search) noexcept;
  /// Where `make install` puts plugins: <libdir>/dmem/plugins of the install prefix.
  [[nodiscard]] static std::string installed_plugin_dir() noexcept;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace v1
}  // namespace dmem
