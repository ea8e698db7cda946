// PluginRegistry: every plugin, whatever its source, goes through activate_plugin (probe check,
// entry, descriptor check), then a default instance tells its capabilities. The registry keeps the
// library of every plugin it accepted.
#include "dmem/plugin_registry.hpp"

#include <cstring>
#include <string>
#include <utility>

#include "plugin_host/abi_check.hpp"
#include "plugin_host/discovery.hpp"
#include "plugin_host/plugin_error.hpp"
#include "plugin_host/plugin_library.hpp"
#include "plugin_host/plugin_log.hpp"
#include "plugin_host/quantizer_impl.hpp"
#include "plugin_host/static_table.hpp"

namespace dmem {
inline namespace v1 {

namespace {

constexpr std::size_t kMaxText = 256;

std::string text(const char* s) {
  return s ? std::string(s, strnlen(s, kMaxText)) : std::string();
}

std::string arch_list(const std::vector<std::uint32_t>& archs) {
  std::string out;
  for (auto a : archs) {
    if (!out.empty()) out += ", ";
    out += "sm_";
    out += std::to_string(a);
  }
  return out;
}

// SASS for sm_XY runs on devices of the same major with minor >= Y (the validator's rule too).
bool archs_cover(const std::vector<std::uint32_t>& archs, std::uint32_t sm) {
  if (archs.empty()) return true;  // no kernels of its own (cuBLASLt only, or CPU only)
  for (auto a : archs)
    if (a / 10 == sm / 10 && a <= sm) return true;
  return false;
}

/// The capabilities of an instance made with no parameters, or why there are none.
Result<PluginInfo> describe(const detail::LoadedPlugin& p, PluginSource source) {
  const dmem_plugin_descriptor& d = *p.descriptor;
  const dmem_quantizer_vtable& q = *d.quantizer;
  detail::PluginError error;
  void* instance = nullptr;
  const std::int32_t rc = q.create(nullptr, &instance, &error.err);
  const char* message = error.message();
  if (rc != DMEM_PLUGIN_OK || !instance) {
    std::string what = "the quantizer cannot be created with its default parameters: ";
    what += message[0] ? message : "no message";
    return Status(Errc::unsupported, std::move(what))
        .with_rule("plugin.create")
        .with_file(p.path)
        .with_hint(
            "a quantizer must start with no parameters so the host can read its "
            "capabilities; fix the plugin's configure() or constructor");
  }
  const dmem_quantizer_caps* c = q.caps(instance);
  if (Status s = detail::check_caps(c, p.path); !s) {
    q.destroy(instance);
    return s;
  }
  PluginInfo info;
  info.id = text(d.id);
  info.display = text(d.display);
  info.version = text(d.version);
  info.abi_major = d.abi_major;
  info.abi_minor = d.abi_minor;
  info.kind = "quantizer";
  info.source = source;
  info.path = p.path;
  QuantizerCaps& qc = info.caps;
  qc.id = info.id;
  qc.variant = text(c->variant);
  qc.display = c->display && c->display[0] ? text(c->display) : info.display;
  qc.exec_devices = c->exec_devices;
  qc.storage_tiers = c->storage_tiers;
  qc.moves_packed = (c->flags & DMEM_PLUGIN_QFLAG_MOVES_PACKED) != 0;
  qc.is_cast = (c->flags & DMEM_PLUGIN_QFLAG_IS_CAST) != 0;
  qc.min_sm = c->min_sm;
  qc.cuda_archs.assign(c->cuda_archs, c->cuda_archs + c->cuda_arch_count);
  qc.quality = static_cast<QualityTier>(c->quality_tier);
  qc.speed_factor = c->speed_factor;
  qc.block_size = c->block_size;
  qc.needs_cublaslt = (c->flags & DMEM_PLUGIN_QFLAG_NEEDS_CUBLASLT) != 0;
  info.input_dtypes = c->input_dtypes;
  info.flags = c->flags;
  info.block_size = c->block_size;
  q.destroy(instance);
  return info;
}

}  // namespace

std::string_view plugin_source_name(PluginSource source) noexcept {
  switch (source) {
    case PluginSource::file:
      return "file";
    case PluginSource::static_table:
      return "static";
    case PluginSource::built_in:
      return "built-in";
  }
  return "unknown";
}

struct PluginRegistry::Impl {
  std::vector<PluginInfo> plugins;
  std::vector<std::shared_ptr<const void>> libraries;      // kept with the plugins they carry
  std::vector<const dmem_plugin_descriptor*> descriptors;  // parallel to plugins
  std::vector<SkippedPlugin> skipped;
  std::uint32_t device_sm = 0;

  Status skip(std::string path, Status why) {
    skipped.push_back({std::move(path), why});
    return why;
  }

  /// Registers what activate_plugin or load_plugin returned, or records why not.
  Status add(Result<detail::LoadedPlugin> loaded, PluginSource source, const std::string& name) {
    if (!loaded) return skip(name, loaded.status());
    const std::string id = text(loaded->descriptor->id);
    for (const PluginInfo& p : plugins)
      if (p.id == id) {
        std::string where(plugin_source_name(p.source));
        where += ' ';
        where += p.path;
        std::string what = "plugin id '" + id;
        what += "' is already registered (";
        what += where;
        what += "): the first one found is used";
        return skip(name,
                    Status(Errc::invalid_argument, std::move(what))
                        .with_rule("plugin.duplicate")
                        .with_file(name)
                        .with_hint("remove one of the two, or put the one you want earlier in the "
                                   "search order (--path, DMEM_PLUGIN_PATH, the installed "
                                   "directory, plugins/ beside the executable)"));
      }
    auto info = describe(*loaded, source);
    if (!info) return skip(name, info.status());
    if (Status s = check_device(*info); !s) return skip(name, std::move(s));
    plugins.push_back(std::move(*info));
    libraries.push_back(loaded->library);
    descriptors.push_back(loaded->descriptor);
    return Status::ok();
  }

  /// A plugin that can run only on CUDA and carries no kernel for this GPU is of no use here.
  Status check_device(PluginInfo& info) const {
    const QuantizerCaps& c = info.caps;
    if (device_sm == 0 || (c.exec_devices & kDeviceCuda) == 0 ||
        archs_cover(c.cuda_archs, device_sm))
      return Status::ok();
    std::string what = "carries CUDA kernels for " + arch_list(c.cuda_archs);
    what += " only, none of which runs on this GPU (sm_";
    what += std::to_string(device_sm);
    what += ')';
    std::string hint = "rebuild the plugin with CMAKE_CUDA_ARCHITECTURES=";
    hint += std::to_string(device_sm);
    hint += " (or add it to the list)";
    if ((c.exec_devices & kDeviceCpu) == 0)
      return Status(Errc::unsupported, std::move(what))
          .with_rule("plugin.cuda_arch")
          .with_file(info.path)
          .with_hint(std::move(hint));
    info.notes.push_back(what + "; it runs on the CPU only here: " + hint);
    return Status::ok();
  }
};

PluginRegistry::PluginRegistry() noexcept : impl_(std::make_unique<Impl>()) {}
PluginRegistry::~PluginRegistry() = default;
PluginRegistry::PluginRegistry(PluginRegistry&&) noexcept = default;
PluginRegistry& PluginRegistry::operator=(PluginRegistry&&) noexcept = default;

void PluginRegistry::set_device_sm(std::uint32_t sm) noexcept {
  impl_->device_sm = sm;
}

std::size_t PluginRegistry::discover(const PluginSearch& search) noexcept {
  const std::size_t before = impl_->plugins.size();
  if (search.static_table)
    for (const PluginEntry& e : detail::static_plugins())
      (void)impl_->add(
          detail::activate_plugin(e.probe, e.entry, detail::plugin_host_table(), e.name),
          PluginSource::static_table, e.name);
  detail::Candidates found = detail::find_candidates(search, detail::process_search_roots());
  for (auto& s : found.ignored) impl_->skipped.push_back(std::move(s));
  for (const std::string& file : found.files) (void)load(file);
  return impl_->plugins.size() - before;
}

Status PluginRegistry::load(const std::string& path) noexcept {
  return impl_->add(detail::load_plugin(path, detail::plugin_host_table()), PluginSource::file,
                    path);
}

Status PluginRegistry::add_plugin(const PluginEntry& entry) noexcept {
  const std::string name = entry.name && entry.name[0] ? text(entry.name) : "(unnamed)";
  return impl_->add(
      detail::activate_plugin(entry.probe, entry.entry, detail::plugin_host_table(), name),
      PluginSource::built_in, name);
}

const std::vector<PluginInfo>& PluginRegistry::plugins() const noexcept {
  return impl_->plugins;
}

const std::vector<SkippedPlugin>& PluginRegistry::skipped() const noexcept {
  return impl_->skipped;
}

const PluginInfo* PluginRegistry::find(std::string_view id) const noexcept {
  for (const PluginInfo& p : impl_->plugins)
    if (p.id == id) return &p;
  return nullptr;
}

Result<QuantizerInstance> PluginRegistry::create_quantizer(
    std::string_view id,
    const std::vector<std::pair<std::string, std::string>>& params) const noexcept {
  for (std::size_t i = 0; i < impl_->plugins.size(); ++i) {
    if (impl_->plugins[i].id != id || impl_->plugins[i].kind != "quantizer") continue;
    auto impl = detail::create_quantizer_impl(impl_->plugins[i], *impl_->descriptors[i]->quantizer,
                                              impl_->libraries[i], params);
    if (!impl) return impl.status();
    return QuantizerInstance(std::move(impl.value()));
  }
  std::string what = "no quantizer plugin with id '";
  what += id;
  what += "' is registered";
  return Status(Errc::not_found, std::move(what))
      .with_rule("plugin.missing")
      .with_hint(
          "`dmem plugins` lists what was found and why other files were skipped; set "
          "DMEM_PLUGIN_PATH to the folder that holds the plugin");
}

std::vector<QuantizerCaps> PluginRegistry::quantizer_caps() const noexcept {
  std::vector<QuantizerCaps> out;
  for (const PluginInfo& p : impl_->plugins)
    if (p.kind == "quantizer") out.push_back(p.caps);
  return out;
}

void PluginRegistry::set_plugin_log(LogConfig config) noexcept {
  detail::set_plugin_log(std::move(config));
}

std::vector<std::string> PluginRegistry::search_directories(const PluginSearch& search) noexcept {
  return detail::search_entries(search, detail::process_search_roots());
}

std::string PluginRegistry::installed_plugin_dir() noexcept {
  return DMEM_INSTALLED_PLUGIN_DIR;
}

}  // namespace v1
}  // namespace dmem
