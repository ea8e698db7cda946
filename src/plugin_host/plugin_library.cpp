// Plugin libraries are opened with Boost.DLL through its error_code overloads (libdmem builds
// without exceptions). Symbols are looked up with has() and then dlsym on the native handle:
// shared_library::get reports a missing symbol by throwing.
#define BOOST_DLL_USE_STD_FS
#include "plugin_host/plugin_library.hpp"

#include <dlfcn.h>

#include <boost/dll/shared_library.hpp>
#include <cstring>
#include <filesystem>
#include <mutex>
#include <vector>

#include "plugin_host/abi_check.hpp"
#include "plugin_host/plugin_error.hpp"
#include "plugin_host/plugin_log.hpp"

namespace dmem::detail {

namespace {

std::mutex& load_mutex() {
  static std::mutex m;
  return m;
}

// Every library ever loaded, kept until the process ends: never unloaded, not even at exit
// (deliberately leaked, so no static destructor runs dlclose while plugin code may still run).
std::vector<std::shared_ptr<const void>>& kept_libraries() {
  static auto* kept = new std::vector<std::shared_ptr<const void>>();
  return *kept;
}

Status load_error(Errc code, std::string message, const char* rule, std::string hint,
                  const std::string& path) {
  return Status(code, std::move(message))
      .with_rule(rule)
      .with_hint(std::move(hint))
      .with_file(path);
}

void* symbol(const boost::dll::shared_library& lib, const char* name) {
  return lib.has(name) ? dlsym(lib.native(), name) : nullptr;
}

Result<LoadedPlugin> activate_locked(dmem_plugin_probe_fn probe_fn, dmem_plugin_entry_fn entry_fn,
                                     const dmem_plugin_host& host, const std::string& path);

}  // namespace

Result<LoadedPlugin> load_plugin(const std::string& path, const dmem_plugin_host& host) noexcept {
  const std::lock_guard<std::mutex> lock(load_mutex());
  std::error_code fs_ec;
  if (!std::filesystem::is_regular_file(path, fs_ec))
    return load_error(Errc::not_found, "plugin library not found", "plugin.load",
                      "check the plugin path", path);

  // RTLD_LOCAL: every plugin defines the same two symbols. RTLD_NOW: a missing dependency fails
  // here, not at some later call.
  boost::dll::fs::error_code ec;
  auto lib = std::make_shared<boost::dll::shared_library>(
      boost::dll::fs::path(path),
      boost::dll::load_mode::rtld_local | boost::dll::load_mode::rtld_now, ec);
  if (ec || !lib->is_loaded()) {
    const char* why = dlerror();
    return load_error(Errc::format_error,
                      std::string("cannot load plugin library: ") + (why ? why : ec.message()),
                      "plugin.load",
                      "the file must be a shared library built for this platform, with every "
                      "library it needs findable",
                      path);
  }

  const auto probe_fn =
      reinterpret_cast<dmem_plugin_probe_fn>(symbol(*lib, DMEM_PLUGIN_PROBE_SYMBOL));
  const auto entry_fn =
      reinterpret_cast<dmem_plugin_entry_fn>(symbol(*lib, DMEM_PLUGIN_ENTRY_SYMBOL));
  if (!probe_fn || !entry_fn)
    return load_error(Errc::format_error,
                      std::string("not a dmem plugin: it does not export ") +
                          (probe_fn ? DMEM_PLUGIN_ENTRY_SYMBOL : DMEM_PLUGIN_PROBE_SYMBOL),
                      "plugin.symbol",
                      "a plugin exports dmem_plugin_probe and dmem_plugin_entry "
                      "(DMEM_QUANTIZER_PLUGIN in dmem/plugin/plugin.hpp defines both)",
                      path);

  auto activated = activate_locked(probe_fn, entry_fn, host, path);
  if (!activated) return activated;
  activated->library = lib;
  kept_libraries().push_back(lib);
  return activated;
}

const dmem_plugin_host& plugin_host_table() noexcept {
  // The default: activation hands each plugin its own copy with a log callback
  // (plugin_host_for); this one, without, is what a plugin would see otherwise.
  static const dmem_plugin_host host{sizeof(dmem_plugin_host), DMEM_PLUGIN_ABI_MAJOR,
                                     DMEM_PLUGIN_ABI_MINOR, nullptr, nullptr};
  return host;
}

Result<LoadedPlugin> activate_plugin(dmem_plugin_probe_fn probe_fn, dmem_plugin_entry_fn entry_fn,
                                     const dmem_plugin_host& host,
                                     const std::string& source) noexcept {
  const std::lock_guard<std::mutex> lock(load_mutex());
  if (!probe_fn || !entry_fn)
    return load_error(Errc::invalid_argument,
                      std::string("the in-binary plugin's ") + (probe_fn ? "entry" : "probe") +
                          " function is NULL",
                      "plugin.entry.null",
                      "pass both functions: dmem_plugin_probe_<name> and dmem_plugin_entry_<name> "
                      "(DMEM_PLUGIN_DECLARE_STATIC declares them)",
                      source);
  return activate_locked(probe_fn, entry_fn, host, source);
}

namespace {

Result<LoadedPlugin> activate_locked(dmem_plugin_probe_fn probe_fn, dmem_plugin_entry_fn entry_fn,
                                     const dmem_plugin_host& host, const std::string& path) {
  const dmem_plugin_probe_info* probe = probe_fn();
  DMEM_TRY(check_probe(probe, path));

  // The default table becomes this plugin's own, so its messages carry its id.
  const dmem_plugin_host* given = &host;
  if (given == &plugin_host_table())
    given = &plugin_host_for(std::string_view(probe->id, strnlen(probe->id, 256)));
  PluginError error;
  const dmem_plugin_descriptor* descriptor = nullptr;
  const std::int32_t rc = entry_fn(given, &descriptor, &error.err);
  const char* message = error.message();
  if (rc != DMEM_PLUGIN_OK) {
    // Plugin status codes are Errc values; anything else is the plugin's bug.
    const bool known = rc > 0 && rc <= DMEM_PLUGIN_INTERNAL &&
                       rc != static_cast<std::int32_t>(Errc::validation_failed);
    const Errc code = known ? static_cast<Errc>(rc) : Errc::internal;
    return load_error(code, std::string("dmem_plugin_entry failed: ") + message, "plugin.entry",
                      code == Errc::internal
                          ? "the plugin failed while starting (an error or exception caught at "
                            "its boundary): report this message to the plugin's author, or "
                            "remove the library from the plugin path"
                          : "see the plugin's message; the plugin refused to start",
                      path);
  }
  DMEM_TRY(check_descriptor(descriptor, *probe, path));

  LoadedPlugin loaded;
  loaded.path = path;
  loaded.probe = probe;
  loaded.descriptor = descriptor;
  return loaded;
}

}  // namespace

}  // namespace dmem::detail
