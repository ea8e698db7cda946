// The accept/reject rules for a plugin's probe and descriptor (docs/plugin-guide.md, "What the
// host checks"). Every rejection names its rule and says what to do about it.
#include "plugin_host/abi_check.hpp"

#include <cmath>
#include <cstddef>
#include <cstring>
#include <initializer_list>
#include <string>

namespace dmem::detail {

namespace {

constexpr std::size_t kMaxIdLength = 128;
constexpr std::uint32_t kMaxCudaArchs = 64;

/// A field of an ABI struct and where it ends: a reader needs struct_size >= end.
struct Field {
  const char* name;
  std::size_t end;
};
// clang-format off
#define DMEM_ABI_FIELD(type, member) Field{#member, offsetof(type, member) + sizeof(type::member)}
// clang-format on

std::string version_text(unsigned major, unsigned minor) {
  return std::to_string(major) + "." + std::to_string(minor);
}

std::string current_abi() {
  return version_text(DMEM_PLUGIN_ABI_MAJOR, DMEM_PLUGIN_ABI_MINOR);
}

Status reject(Errc code, std::string message, const char* rule, std::string hint,
              std::string_view source) {
  return Status(code, std::move(message))
      .with_rule(rule)
      .with_hint(std::move(hint))
      .with_file(std::string(source));
}

/// Rejects a struct whose struct_size does not cover every field this ABI version requires,
/// naming the first field it misses. A larger struct is fine: its extra fields are ignored.
Status require_fields(const char* struct_name, std::uint32_t struct_size,
                      std::initializer_list<Field> fields, std::string_view source) {
  for (const Field& f : fields)
    if (struct_size < f.end)
      return reject(Errc::format_error,
                    std::string(struct_name) + ".struct_size is " + std::to_string(struct_size) +
                        ", too small to hold field '" + f.name + "' (needs " +
                        std::to_string(f.end) + ")",
                    "plugin.struct_size",
                    "the plugin was not built with dmem's plugin headers: rebuild it against "
                    "include/dmem/plugin/abi.h of dmem (plugin ABI " +
                        current_abi() + ")",
                    source);
  return Status::ok();
}

Status null_entry(const std::string& what, std::string_view source) {
  return reject(Errc::format_error, what + " is NULL", "plugin.entry.null",
                "the plugin is broken: every entry of its descriptor must be set (the C++ "
                "adapter in dmem/plugin/plugin.hpp fills them all)",
                source);
}

/// Ids are short lowercase dotted names ("dmem.quantizer.nf4"); anything else is refused before
/// it reaches a message or a registry.
bool valid_id(const char* id) {
  const std::size_t n = strnlen(id, kMaxIdLength + 1);
  if (n == 0 || n > kMaxIdLength) return false;
  for (std::size_t i = 0; i < n; ++i) {
    const char c = id[i];
    const bool ok =
        (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-';
    if (!ok) return false;
  }
  return true;
}

}  // namespace

Status check_probe(const dmem_plugin_probe_info* probe, std::string_view source,
                   PluginAbiVersion host) noexcept {
  using P = dmem_plugin_probe_info;
  if (!probe) return null_entry("dmem_plugin_probe() returned a pointer that", source);
  // The version comes first, so a plugin of another major is told so whatever its struct size.
  DMEM_TRY(require_fields("dmem_plugin_probe_info", probe->struct_size,
                          {DMEM_ABI_FIELD(P, abi_major), DMEM_ABI_FIELD(P, abi_minor)}, source));
  const std::string plugin_abi = version_text(probe->abi_major, probe->abi_minor);
  const std::string host_abi = version_text(host.major, host.minor);
  if (probe->abi_major != host.major)
    return reject(
        Errc::unsupported,
        "plugin ABI " + plugin_abi + " has another major version than this dmem's " + host_abi,
        "plugin.abi.major",
        "rebuild the plugin against the headers of this dmem (plugin ABI " + host_abi + ")",
        source);
  if (probe->abi_minor > host.minor)
    return reject(Errc::unsupported,
                  "plugin needs plugin ABI " + plugin_abi + ", newer than this dmem's " + host_abi,
                  "plugin.abi.minor",
                  "update dmem to a release with plugin ABI " + plugin_abi +
                      " or later, or rebuild the plugin against this dmem's headers (plugin ABI " +
                      host_abi + ")",
                  source);
  DMEM_TRY(require_fields(
      "dmem_plugin_probe_info", probe->struct_size,
      {DMEM_ABI_FIELD(P, kind), DMEM_ABI_FIELD(P, id), DMEM_ABI_FIELD(P, version)}, source));
  if (probe->kind == DMEM_PLUGIN_KIND_OFFLOADER)
    return reject(Errc::unsupported, "offloader plugins are not loaded by plugin ABI " + host_abi,
                  "plugin.kind",
                  "offloader plugins are reserved for a later plugin ABI minor; remove this "
                  "library from the plugin path",
                  source);
  if (probe->kind != DMEM_PLUGIN_KIND_QUANTIZER)
    return reject(
        Errc::unsupported, "unknown plugin kind " + std::to_string(probe->kind), "plugin.kind",
        "rebuild the plugin against this dmem's headers (plugin ABI " + host_abi + ")", source);
  if (!probe->id) return null_entry("dmem_plugin_probe_info.id", source);
  if (!valid_id(probe->id))
    return reject(Errc::format_error,
                  "plugin id must be 1 to " + std::to_string(kMaxIdLength) +
                      " characters of a-z, 0-9, '.', '_' or '-'",
                  "plugin.id", "give the plugin a stable id such as dmem.quantizer.<name>", source);
  return Status::ok();
}

Status check_descriptor(const dmem_plugin_descriptor* d, const dmem_plugin_probe_info& probe,
                        std::string_view source) noexcept {
  using D = dmem_plugin_descriptor;
  using Q = dmem_quantizer_vtable;
  if (!d) return null_entry("the descriptor from dmem_plugin_entry()", source);
  DMEM_TRY(require_fields(
      "dmem_plugin_descriptor", d->struct_size,
      {DMEM_ABI_FIELD(D, abi_major), DMEM_ABI_FIELD(D, abi_minor), DMEM_ABI_FIELD(D, kind),
       DMEM_ABI_FIELD(D, id), DMEM_ABI_FIELD(D, display), DMEM_ABI_FIELD(D, version),
       DMEM_ABI_FIELD(D, quantizer), DMEM_ABI_FIELD(D, offloader)},
      source));
  // probe and entry must describe the same plugin, or the version checks proved nothing.
  const bool same_id = d->id && probe.id && std::strncmp(d->id, probe.id, kMaxIdLength + 1) == 0;
  if (d->abi_major != probe.abi_major || d->abi_minor != probe.abi_minor || d->kind != probe.kind ||
      !same_id)
    return reject(Errc::format_error,
                  "dmem_plugin_entry() describes another plugin than dmem_plugin_probe() "
                  "(ABI version, kind or id differ)",
                  "plugin.mismatch",
                  "the plugin is broken: probe and entry must report the same ABI version, kind "
                  "and id",
                  source);
  if (d->kind != DMEM_PLUGIN_KIND_QUANTIZER)
    return reject(Errc::unsupported, "unknown plugin kind " + std::to_string(d->kind),
                  "plugin.kind", "rebuild the plugin against this dmem's headers", source);
  const Q* q = d->quantizer;
  if (!q) return null_entry("dmem_plugin_descriptor.quantizer", source);
  DMEM_TRY(require_fields(
      "dmem_quantizer_vtable", q->struct_size,
      {DMEM_ABI_FIELD(Q, create), DMEM_ABI_FIELD(Q, destroy), DMEM_ABI_FIELD(Q, caps),
       DMEM_ABI_FIELD(Q, stored_bytes), DMEM_ABI_FIELD(Q, quantize), DMEM_ABI_FIELD(Q, dequantize),
       DMEM_ABI_FIELD(Q, linear)},
      source));
  const struct {
    const char* name;
    bool present;
  } functions[] = {
      {"create", q->create != nullptr},     {"destroy", q->destroy != nullptr},
      {"caps", q->caps != nullptr},         {"stored_bytes", q->stored_bytes != nullptr},
      {"quantize", q->quantize != nullptr}, {"dequantize", q->dequantize != nullptr},
      {"linear", q->linear != nullptr}};
  for (const auto& f : functions)
    if (!f.present) return null_entry(std::string("dmem_quantizer_vtable.") + f.name, source);
  return Status::ok();
}

Status check_caps(const dmem_quantizer_caps* c, std::string_view source) noexcept {
  using C = dmem_quantizer_caps;
  if (!c) return null_entry("dmem_quantizer_vtable.caps() returned a pointer that", source);
  DMEM_TRY(require_fields(
      "dmem_quantizer_caps", c->struct_size,
      {DMEM_ABI_FIELD(C, exec_devices), DMEM_ABI_FIELD(C, storage_tiers), DMEM_ABI_FIELD(C, flags),
       DMEM_ABI_FIELD(C, input_dtypes), DMEM_ABI_FIELD(C, min_sm), DMEM_ABI_FIELD(C, block_size),
       DMEM_ABI_FIELD(C, quality_tier), DMEM_ABI_FIELD(C, cuda_arch_count),
       DMEM_ABI_FIELD(C, cuda_archs), DMEM_ABI_FIELD(C, speed_factor), DMEM_ABI_FIELD(C, variant),
       DMEM_ABI_FIELD(C, display)},
      source));
  if (c->cuda_arch_count > 0 && !c->cuda_archs)
    return null_entry("dmem_quantizer_caps.cuda_archs (with cuda_arch_count > 0)", source);
  const char* bad = nullptr;
  if (c->cuda_arch_count > kMaxCudaArchs)
    bad = "lists more than 64 CUDA architectures";
  else if (c->quality_tier > DMEM_PLUGIN_QUALITY_Q2)
    bad = "has an unknown quality_tier";
  else if (!std::isfinite(c->speed_factor) || c->speed_factor <= 0.0)
    bad = "has a speed_factor that is not a positive number";
  if (bad)
    return reject(Errc::format_error, std::string("the quantizer's capabilities ") + bad,
                  "plugin.caps",
                  "the plugin is broken: fix what its caps() reports (docs/plugin-guide.md, "
                  "Capabilities)",
                  source);
  return Status::ok();
}

}  // namespace dmem::detail
