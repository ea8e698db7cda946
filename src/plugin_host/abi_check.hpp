// Internal: whether the host accepts what a plugin's dmem_plugin_probe and dmem_plugin_entry
// returned. Pure functions over the C structs (no loading), so every rule is testable with
// hand-built descriptors. Rule ids: docs/plugin-guide.md.
#pragma once

#include <cstdint>
#include <string_view>

#include "dmem/plugin/abi.h"
#include "dmem/status.hpp"

namespace dmem::detail {

/// The plugin ABI version a host implements; the default is the one this dmem was built with.
struct PluginAbiVersion {
  std::uint16_t major = DMEM_PLUGIN_ABI_MAJOR;
  std::uint16_t minor = DMEM_PLUGIN_ABI_MINOR;
};

/// Checks dmem_plugin_probe's answer before anything else of the plugin runs: not NULL, struct
/// size, ABI major equal and minor not newer than the host's, a kind this host loads, an id.
/// `source` (the library's path) goes into the Status's file.
[[nodiscard]] Status check_probe(const dmem_plugin_probe_info* probe, std::string_view source,
                                 PluginAbiVersion host = {}) noexcept;

/// Checks the descriptor dmem_plugin_entry handed back, against the probe already accepted: its
/// struct sizes, that it agrees with the probe (version, kind, id), and that every function of
/// its kind's table is present.
[[nodiscard]] Status check_descriptor(const dmem_plugin_descriptor* descriptor,
                                      const dmem_plugin_probe_info& probe,
                                      std::string_view source) noexcept;

/// Checks the capabilities a quantizer instance reported: struct size, the arch list present
/// when counted and of a sane length, a known quality tier, a positive finite speed factor.
[[nodiscard]] Status check_caps(const dmem_quantizer_caps* caps, std::string_view source) noexcept;

}  // namespace dmem::detail
