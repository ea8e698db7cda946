#include "support/stock_plugins.hpp"

namespace dmem::test {

const PluginRegistry& stock_plugins() {
  static const PluginRegistry registry = [] {
    PluginRegistry r;
#if defined(DMEM_TEST_PLUGIN_NF4)
    (void)r.load(DMEM_TEST_PLUGIN_NF4);
#endif
#if defined(DMEM_TEST_PLUGIN_FP8_CAST)
    (void)r.load(DMEM_TEST_PLUGIN_FP8_CAST);
#endif
#if DMEM_TEST_HAVE_GGUF_PLUGIN
    (void)r.load(DMEM_TEST_PLUGIN_GGUF);
#endif
#if DMEM_TEST_HAVE_BNB_INT8_PLUGIN
    (void)r.load(DMEM_TEST_PLUGIN_BNB_INT8);
#endif
    // The static table, and nothing from the environment or the machine.
    PluginSearch s;
    s.environment = false;
    s.installed = false;
    s.beside_executable = false;
    (void)r.discover(s);
    return r;
  }();
  return registry;
}

}  // namespace dmem::test
