// The host's accept/reject rules for a plugin's probe and descriptor, on hand-built structs: each
// rejection carries its rule id, the plugin's path and a hint.
#include <catch2/catch.hpp>

#include <cstring>
#include <string>

#include "abi/abi_c99.h"
#include "abi/int8_row_quantizer.hpp"
#include "dmem/plugin/abi.h"
#include "dmem/plugin/plugin.hpp"
#include "plugin_host/abi_check.hpp"

using dmem::Errc;
using dmem::detail::check_descriptor;
using dmem::detail::check_probe;
using dmem::detail::PluginAbiVersion;

namespace {

constexpr const char* kPath = "/opt/plugins/libdmem_plugin_x.so";
using Int8 = dmem::plugin::QuantizerAdapter<dmem_test::Int8RowQuantizer>;

dmem_plugin_probe_info good_probe() {
  return {sizeof(dmem_plugin_probe_info),
          DMEM_PLUGIN_ABI_MAJOR,
          DMEM_PLUGIN_ABI_MINOR,
          DMEM_PLUGIN_KIND_QUANTIZER,
          0,
          "dmem.quantizer.x",
          "1.0"};
}

// A descriptor as the adapter would build it, with the probe's id, ready to be broken.
// Not copyable: the descriptor points at its own vtable.
struct Built {
  dmem_quantizer_vtable vtable{};
  dmem_plugin_descriptor d{};
  Built() { reset(); }
  Built(const Built&) = delete;
  Built& operator=(const Built&) = delete;
  void reset() {
    vtable = *Int8::vtable();
    d = *Int8::descriptor();
    d.id = "dmem.quantizer.x";
    d.quantizer = &vtable;
  }
};

void check_rejected(const dmem::Status& st, const char* rule, Errc code) {
  INFO(st.to_string());
  CHECK_FALSE(st.is_ok());
  CHECK(st.rule() == rule);
  CHECK(st.code() == code);
  CHECK(st.file() == kPath);
  CHECK_FALSE(st.hint().empty());
}

}  // namespace

TEST_CASE("host check: plugins built by the adapter and in plain C are accepted", "[abi]") {
  CHECK(check_probe(Int8::probe(), kPath).is_ok());
  CHECK(check_descriptor(Int8::descriptor(), *Int8::probe(), kPath).is_ok());
  const dmem_plugin_probe_info* c_probe = dmem_abi_c99_probe();
  REQUIRE(check_probe(c_probe, kPath).is_ok());
  const dmem_plugin_descriptor* c_desc = nullptr;
  REQUIRE(dmem_abi_c99_entry(nullptr, &c_desc, nullptr) == DMEM_PLUGIN_OK);
  CHECK(check_descriptor(c_desc, *c_probe, kPath).is_ok());
}

TEST_CASE("host check: ABI major must match exactly", "[abi]") {
  dmem_plugin_probe_info p = good_probe();
  p.abi_major = DMEM_PLUGIN_ABI_MAJOR + 1;
  const auto st = check_probe(&p, kPath);
  check_rejected(st, "plugin.abi.major", Errc::unsupported);
  CHECK(st.message() == "plugin ABI 2.0 has another major version than this dmem's 1.0");
  CHECK(st.hint() == "rebuild the plugin against the headers of this dmem (plugin ABI 1.0)");
  // An older major too, even with a struct that ends right after the version.
  p.abi_major = 0;
  p.struct_size = 8;
  check_rejected(check_probe(&p, kPath), "plugin.abi.major", Errc::unsupported);
}

TEST_CASE("host check: the plugin's minor must not be newer than the host's", "[abi]") {
  dmem_plugin_probe_info p = good_probe();
  p.abi_minor = 3;
  const auto st = check_probe(&p, kPath, PluginAbiVersion{1, 2});
  check_rejected(st, "plugin.abi.minor", Errc::unsupported);
  CHECK(st.message() == "plugin needs plugin ABI 1.3, newer than this dmem's 1.2");
  CHECK(st.hint().find("update dmem to a release with plugin ABI 1.3 or later") == 0);
  // Older and equal minors load.
  CHECK(check_probe(&p, kPath, PluginAbiVersion{1, 3}).is_ok());
  CHECK(check_probe(&p, kPath, PluginAbiVersion{1, 7}).is_ok());
}

TEST_CASE("host check: struct_size must cover every field; larger is accepted", "[abi]") {
  dmem_plugin_probe_info p = good_probe();
  p.struct_size = 20;  // stops inside `id`
  auto st = check_probe(&p, kPath);
  check_rejected(st, "plugin.struct_size", Errc::format_error);
  CHECK(st.message() ==
        "dmem_plugin_probe_info.struct_size is 20, too small to hold field 'id' (needs 24)");
  p.struct_size = 4;  // not even the version
  st = check_probe(&p, kPath);
  check_rejected(st, "plugin.struct_size", Errc::format_error);
  CHECK(st.message().find("field 'abi_major'") != std::string::npos);
  // A newer minor of the same major appends fields: the host ignores what it does not know.
  p = good_probe();
  p.struct_size = sizeof(p) + 64;
  CHECK(check_probe(&p, kPath).is_ok());

  const dmem_plugin_probe_info probe = good_probe();
  Built b;
  b.d.struct_size = offsetof(dmem_plugin_descriptor, quantizer);
  st = check_descriptor(&b.d, probe, kPath);
  check_rejected(st, "plugin.struct_size", Errc::format_error);
  CHECK(st.message().find("dmem_plugin_descriptor.struct_size is 40") == 0);
  CHECK(st.message().find("'quantizer'") != std::string::npos);
  b.d.struct_size = sizeof(dmem_plugin_descriptor) + 8;
  CHECK(check_descriptor(&b.d, probe, kPath).is_ok());

  b.reset();
  b.vtable.struct_size = offsetof(dmem_quantizer_vtable, linear);  // an older table, no linear
  st = check_descriptor(&b.d, probe, kPath);
  check_rejected(st, "plugin.struct_size", Errc::format_error);
  CHECK(st.message().find("dmem_quantizer_vtable.struct_size is 56") == 0);
  CHECK(st.message().find("'linear'") != std::string::npos);
  b.vtable.struct_size = sizeof(dmem_quantizer_vtable) + 16;
  CHECK(check_descriptor(&b.d, probe, kPath).is_ok());
}

TEST_CASE("host check: NULL probe, descriptor, table or function is rejected by name", "[abi]") {
  check_rejected(check_probe(nullptr, kPath), "plugin.entry.null", Errc::format_error);
  dmem_plugin_probe_info p = good_probe();
  p.id = nullptr;
  auto st = check_probe(&p, kPath);
  check_rejected(st, "plugin.entry.null", Errc::format_error);
  CHECK(st.message() == "dmem_plugin_probe_info.id is NULL");

  const dmem_plugin_probe_info probe = good_probe();
  check_rejected(check_descriptor(nullptr, probe, kPath), "plugin.entry.null", Errc::format_error);
  Built b;
  b.d.quantizer = nullptr;
  st = check_descriptor(&b.d, probe, kPath);
  check_rejected(st, "plugin.entry.null", Errc::format_error);
  CHECK(st.message() == "dmem_plugin_descriptor.quantizer is NULL");
  const char* names[] = {"create",   "destroy",    "caps",  "stored_bytes",
                         "quantize", "dequantize", "linear"};
  for (std::size_t i = 0; i < 7; ++i) {
    Built nb;
    // Clear the i-th function pointer (they follow struct_size and reserved, in this order).
    void* slot = reinterpret_cast<char*>(&nb.vtable) + offsetof(dmem_quantizer_vtable, create) +
                 i * sizeof(void*);
    std::memset(slot, 0, sizeof(void*));
    st = check_descriptor(&nb.d, probe, kPath);
    check_rejected(st, "plugin.entry.null", Errc::format_error);
    CHECK(st.message() == std::string("dmem_quantizer_vtable.") + names[i] + " is NULL");
  }
}

TEST_CASE("host check: kinds other than quantizer are refused", "[abi]") {
  dmem_plugin_probe_info p = good_probe();
  p.kind = DMEM_PLUGIN_KIND_OFFLOADER;
  auto st = check_probe(&p, kPath);
  check_rejected(st, "plugin.kind", Errc::unsupported);
  CHECK(st.message() == "offloader plugins are not loaded by plugin ABI 1.0");
  p.kind = 77;
  st = check_probe(&p, kPath);
  check_rejected(st, "plugin.kind", Errc::unsupported);
  CHECK(st.message() == "unknown plugin kind 77");
}

TEST_CASE("host check: ids are short lowercase dotted names", "[abi]") {
  dmem_plugin_probe_info p = good_probe();
  for (const char* bad : {"", "Dmem.Quantizer", "dmem quantizer", "dmem.quantizer.\x1b[31m"}) {
    p.id = bad;
    check_rejected(check_probe(&p, kPath), "plugin.id", Errc::format_error);
  }
  const std::string long_id(129, 'a');
  p.id = long_id.c_str();
  check_rejected(check_probe(&p, kPath), "plugin.id", Errc::format_error);
  const std::string max_id(128, 'a');
  p.id = max_id.c_str();
  CHECK(check_probe(&p, kPath).is_ok());
}

TEST_CASE("host check: probe and entry must describe the same plugin", "[abi]") {
  const dmem_plugin_probe_info probe = good_probe();
  Built b;
  b.d.id = "dmem.quantizer.other";
  check_rejected(check_descriptor(&b.d, probe, kPath), "plugin.mismatch", Errc::format_error);
  b.reset();
  b.d.abi_minor = DMEM_PLUGIN_ABI_MINOR + 1;
  check_rejected(check_descriptor(&b.d, probe, kPath), "plugin.mismatch", Errc::format_error);
  b.reset();
  b.d.kind = DMEM_PLUGIN_KIND_OFFLOADER;
  check_rejected(check_descriptor(&b.d, probe, kPath), "plugin.mismatch", Errc::format_error);
  b.reset();
  b.d.id = nullptr;
  check_rejected(check_descriptor(&b.d, probe, kPath), "plugin.mismatch", Errc::format_error);
}
