// Internal: the error struct the host hands to every plugin call, with its message buffer.
#pragma once

#include "dmem/plugin/abi.h"

namespace dmem::detail {

struct PluginError {
  char text[512] = {};
  dmem_plugin_error err{};

  PluginError() noexcept {
    err.struct_size = sizeof(err);
    err.capacity = sizeof(text);
    err.message = text;
  }
  PluginError(const PluginError&) = delete;  // err points into this object
  PluginError& operator=(const PluginError&) = delete;

  /// What the plugin wrote, as a C string whatever it did to the buffer.
  [[nodiscard]] const char* message() noexcept {
    text[sizeof(text) - 1] = '\0';
    return text;
  }
};

}  // namespace dmem::detail
