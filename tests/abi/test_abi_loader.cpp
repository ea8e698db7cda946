// Loading plugin libraries by path (Boost.DLL): a real plugin .so built by the tests is loaded,
// checked and driven through its table; files that are not plugins are refused with a rule id.
#include <catch2/catch.hpp>

#include <dlfcn.h>

#include <string>
#include <vector>

#include "dmem/plugin/abi.h"
#include "plugin_host/plugin_library.hpp"

using dmem::Errc;
using dmem::detail::load_plugin;

namespace {

const dmem_plugin_host& test_host() {
  static const dmem_plugin_host host{sizeof(dmem_plugin_host), DMEM_PLUGIN_ABI_MAJOR,
                                     DMEM_PLUGIN_ABI_MINOR, nullptr, nullptr};
  return host;
}

}  // namespace

TEST_CASE("loader: a plugin library is loaded by path, checked and usable", "[abi]") {
  auto loaded = load_plugin(DMEM_TEST_PLUGIN_INT8, test_host());
  INFO(loaded.status().to_string());
  REQUIRE(loaded.has_value());
  CHECK(loaded->path == DMEM_TEST_PLUGIN_INT8);
  CHECK(std::string(loaded->probe->id) == "dmem.quantizer.int8_row_test");
  REQUIRE(loaded->descriptor != nullptr);
  CHECK(loaded->descriptor->kind == DMEM_PLUGIN_KIND_QUANTIZER);
  // The loader keeps its own reference: the library is never unloaded.
  CHECK(loaded->library.use_count() >= 2);

  const dmem_quantizer_vtable* q = loaded->descriptor->quantizer;
  void* inst = nullptr;
  REQUIRE(q->create(nullptr, &inst, nullptr) == DMEM_PLUGIN_OK);
  std::vector<float> w = {2.0f, -1.0f, 0.5f, 4.0f};
  dmem_plugin_tensor t{};
  t.struct_size = sizeof(t);
  t.dtype = DMEM_PLUGIN_DTYPE_F32;
  t.device = DMEM_PLUGIN_DEVICE_CPU;
  t.rank = 2;
  t.shape[0] = 2;
  t.shape[1] = 2;
  t.data = w.data();
  t.nbytes = 16;
  std::uint64_t bytes = 0;
  REQUIRE(q->stored_bytes(inst, &t, &bytes, nullptr) == DMEM_PLUGIN_OK);
  CHECK(bytes == 4 + 2 * 4);
  std::vector<float> storage(3);
  dmem_plugin_tensor packed = t;
  packed.data = storage.data();
  packed.nbytes = bytes;
  REQUIRE(q->quantize(inst, &t, &packed, nullptr, nullptr) == DMEM_PLUGIN_OK);
  std::vector<float> back(4);
  dmem_plugin_tensor out = t;
  out.data = back.data();
  REQUIRE(q->dequantize(inst, &packed, &out, nullptr, nullptr) == DMEM_PLUGIN_OK);
  CHECK(back[0] == 2.0f);  // each row's absmax survives exactly
  CHECK(back[3] == 4.0f);
  q->destroy(inst);

  // Loading again finds the same mapping.
  auto again = load_plugin(DMEM_TEST_PLUGIN_INT8, test_host());
  REQUIRE(again.has_value());
  CHECK(again->descriptor == loaded->descriptor);

  // The export map leaves only the two entry symbols visible (the adapter's inline functions,
  // such as dmem::plugin::detail::host_slot(), stay private to the plugin).
  void* handle = dlopen(DMEM_TEST_PLUGIN_INT8, RTLD_NOW | RTLD_LOCAL | RTLD_NOLOAD);
  REQUIRE(handle != nullptr);
  CHECK(dlsym(handle, "dmem_plugin_probe") != nullptr);
  CHECK(dlsym(handle, "dmem_plugin_entry") != nullptr);
  CHECK(dlsym(handle, "_ZN4dmem2v16plugin6detail9host_slotEv") == nullptr);
  dlclose(handle);  // drops only this test's reference
}

TEST_CASE("loader: files that are not plugins are refused with a rule id", "[abi]") {
  auto missing = load_plugin(std::string(DMEM_SOURCE_DIR) + "/no/such/plugin.so", test_host());
  REQUIRE_FALSE(missing.has_value());
  CHECK(missing.status().code() == Errc::not_found);
  CHECK(missing.status().rule() == "plugin.load");

  const std::string text = std::string(DMEM_SOURCE_DIR) + "/docs/plugin-guide.md";
  auto not_lib = load_plugin(text, test_host());
  REQUIRE_FALSE(not_lib.has_value());
  INFO(not_lib.status().to_string());
  CHECK(not_lib.status().code() == Errc::format_error);
  CHECK(not_lib.status().rule() == "plugin.load");
  CHECK(not_lib.status().file() == text);
  CHECK(not_lib.status().message().find("cannot load plugin library: ") == 0);

  // A plugin that refuses to start: its entry reports why, and the host passes it on.
  static const dmem_plugin_host future{sizeof(dmem_plugin_host), DMEM_PLUGIN_ABI_MAJOR + 1, 0,
                                       nullptr, nullptr};
  auto refused = load_plugin(DMEM_TEST_PLUGIN_INT8, future);
  REQUIRE_FALSE(refused.has_value());
  CHECK(refused.status().code() == Errc::unsupported);
  CHECK(refused.status().rule() == "plugin.entry");
  CHECK(refused.status().message() ==
        "dmem_plugin_entry failed: host plugin ABI major differs from the one this plugin was "
        "built for");

  // A shared library, but not a plugin: libdmem itself.
  auto not_plugin = load_plugin(DMEM_TEST_LIBDMEM, test_host());
  REQUIRE_FALSE(not_plugin.has_value());
  CHECK(not_plugin.status().rule() == "plugin.symbol");
  CHECK(not_plugin.status().message() == "not a dmem plugin: it does not export dmem_plugin_probe");
  CHECK_FALSE(not_plugin.status().hint().empty());
}
