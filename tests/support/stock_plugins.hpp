// The stock quantizer plugins (nf4, fp8_cast, gguf, bnb_int8) for tests that run them: by path
// in a plugin build, from the static table in a DMEM_STATIC_PLUGINS one.
#pragma once

#include "dmem/plugin_registry.hpp"

namespace dmem::test {

/// One registry for the whole test run (built on first use).
const PluginRegistry& stock_plugins();

}  // namespace dmem::test
