// The plugin registry: discovery order, duplicates, in-binary plugins, and a fixture library for
// every way a plugin can fail. Each failure is a Status naming the file, a rule id and what to do,
// and the registry goes on with the next candidate.
#include <catch2/catch.hpp>

#include <filesystem>
#include <string>

#include "abi/int8_row_quantizer.hpp"
#include "dmem/plugin_registry.hpp"
#include "plugin_host/discovery.hpp"
#include "support/test_support.hpp"

using dmem::Errc;
using dmem::PluginRegistry;
using dmem::PluginSearch;
using dmem::PluginSource;
using dmem::SkippedPlugin;

namespace {

namespace fs = std::filesystem;

std::string fixture(const std::string& variant) {
  return std::string(DMEM_TEST_FIXTURE_DIR) + "/dmem_plugin_fixture_" + variant + ".so";
}

/// Copies fixture `variant` into `dir` as `name` (default: its own file name).
std::string place(const dmem::test::TempDir& dir, const std::string& variant,
                  std::string name = {}) {
  if (name.empty()) name = "dmem_plugin_fixture_" + variant + ".so";
  fs::copy_file(fixture(variant), dir.path() / name, fs::copy_options::overwrite_existing);
  return dir.file(name);
}

/// Only the paths given: no static table, environment, installed or executable directory.
PluginSearch only(std::vector<std::string> paths) {
  PluginSearch s;
  s.paths = std::move(paths);
  s.static_table = false;
  s.environment = false;
  s.installed = false;
  s.beside_executable = false;
  return s;
}

const SkippedPlugin* skipped_for(const PluginRegistry& r, const std::string& path) {
  for (const auto& s : r.skipped())
    if (s.path == path) return &s;
  return nullptr;
}

/// Loads one fixture by path and returns why it was refused.
dmem::Status refusal(const std::string& variant, std::uint32_t device_sm = 0) {
  PluginRegistry r;
  r.set_device_sm(device_sm);
  dmem::Status s = r.load(fixture(variant));
  CHECK(r.plugins().empty());
  REQUIRE(r.skipped().size() == 1);
  CHECK(r.skipped()[0].path == fixture(variant));
  CHECK(s.file() == fixture(variant));  // every refusal names the file
  CHECK_FALSE(s.hint().empty());        // and says what to do
  // The host is still alive and still loads a good plugin afterwards.
  CHECK(r.load(fixture("good")).is_ok());
  return s;
}

}  // namespace

TEST_CASE("registry: search order is explicit paths, DMEM_PLUGIN_PATH, installed, executable",
          "[abi]") {
  dmem::detail::SearchRoots roots;
  roots.environment = "/env/a::/env/b:";
  roots.installed_dir = "/prefix/lib/dmem/plugins";
  roots.executable_dir = "/opt/app/bin";
  PluginSearch s;
  s.paths = {"/explicit/one", "/explicit/two.so"};
  CHECK(dmem::detail::search_entries(s, roots) ==
        std::vector<std::string>{"/explicit/one", "/explicit/two.so", "/env/a", "/env/b",
                                 "/prefix/lib/dmem/plugins", "/opt/app/bin/plugins"});
  s.environment = false;
  s.beside_executable = false;
  CHECK(dmem::detail::search_entries(s, roots) ==
        std::vector<std::string>{"/explicit/one", "/explicit/two.so", "/prefix/lib/dmem/plugins"});
  CHECK(PluginRegistry::installed_plugin_dir().ends_with("/dmem/plugins"));
}

TEST_CASE("registry: a directory's dmem_plugin_*.so are tried in name order, others reported",
          "[abi]") {
  dmem::test::TempDir dir;
  const std::string b = place(dir, "good", "dmem_plugin_b.so");
  const std::string a = place(dir, "good", "dmem_plugin_a.so");  // same id: first by name wins
  const std::string other = place(dir, "good", "libsomething.so");
  dmem::test::write_file(dir.file("README.txt"), "not a library");
  const std::string missing = dir.file("no_such_dir");

  PluginRegistry r;
  CHECK(r.discover(only({dir.path().string(), missing})) == 1);
  REQUIRE(r.plugins().size() == 1);
  const dmem::PluginInfo& p = r.plugins()[0];
  CHECK(p.id == "dmem.quantizer.fixture_good");
  CHECK(p.path == a);
  CHECK(p.source == PluginSource::file);
  CHECK(p.kind == "quantizer");
  CHECK(p.abi_major == DMEM_PLUGIN_ABI_MAJOR);
  CHECK(p.version == "1.0.0");
  CHECK(p.caps.exec_devices == dmem::kDeviceCpu);
  CHECK(p.caps.quality == dmem::QualityTier::int8);
  CHECK(p.input_dtypes == DMEM_PLUGIN_DTYPE_BIT(DMEM_PLUGIN_DTYPE_F32));
  CHECK(r.find("dmem.quantizer.fixture_good") == &p);
  CHECK(r.find("dmem.quantizer.none") == nullptr);
  CHECK(r.quantizer_caps().size() == 1);

  const SkippedPlugin* dup = skipped_for(r, b);
  REQUIRE(dup != nullptr);
  CHECK(dup->why.rule() == "plugin.duplicate");
  CHECK(dup->why.message().find("already registered (file " + a + ")") != std::string::npos);
  const SkippedPlugin* named = skipped_for(r, other);
  REQUIRE(named != nullptr);
  CHECK(named->why.rule() == "plugin.name");
  const SkippedPlugin* gone = skipped_for(r, missing);
  REQUIRE(gone != nullptr);
  CHECK(gone->why.rule() == "plugin.path");
  CHECK(gone->why.code() == Errc::not_found);
  CHECK(skipped_for(r, dir.file("README.txt")) == nullptr);  // not a library: not mentioned
  CHECK(r.skipped().size() == 3);

  // A file named explicitly is tried whatever its name; the same file twice is tried once.
  PluginRegistry explicit_file;
  CHECK(explicit_file.discover(only({other, other, dir.path().string()})) == 1);
  CHECK(explicit_file.plugins()[0].path == other);
}

TEST_CASE("registry: DMEM_PLUGIN_PATH lists directories and files", "[abi]") {
  dmem::test::TempDir dir;
  place(dir, "good");
  const std::string broken = place(dir, "wrong_major");
  std::string path_list(":");  // appended: GCC 12 -O3 -Wrestrict misfires on ":" + string
  path_list += dir.path().string();
  path_list += ':';
  ::setenv("DMEM_PLUGIN_PATH", path_list.c_str(), 1);
  PluginSearch s = only({});
  s.environment = true;
  PluginRegistry r;
  const std::size_t added = r.discover(s);
  ::unsetenv("DMEM_PLUGIN_PATH");
  CHECK(added == 1);
  REQUIRE(r.skipped().size() == 1);
  CHECK(r.skipped()[0].path == broken);
  CHECK(r.skipped()[0].why.rule() == "plugin.abi.major");
  CHECK(PluginRegistry::search_directories(s).empty());  // the variable is gone again
}

TEST_CASE("registry: in-binary plugins go through the same checks (add_plugin)", "[abi]") {
  using Adapter = dmem::plugin::QuantizerAdapter<dmem_test::Int8RowQuantizer>;
  PluginRegistry r;
  REQUIRE(r.add_plugin({"int8_row", &Adapter::probe, &Adapter::entry}).is_ok());
  REQUIRE(r.plugins().size() == 1);
  CHECK(r.plugins()[0].source == PluginSource::built_in);
  CHECK(r.plugins()[0].path == "int8_row");
  CHECK(r.plugins()[0].id == "dmem.quantizer.int8_row_test");
  CHECK(dmem::plugin_source_name(r.plugins()[0].source) == "built-in");

  // Twice: the same id is refused the second time.
  dmem::Status again = r.add_plugin({"int8_row again", &Adapter::probe, &Adapter::entry});
  CHECK(again.rule() == "plugin.duplicate");
  CHECK(again.file() == "int8_row again");
  // A missing function.
  dmem::Status null = r.add_plugin({"half", &Adapter::probe, nullptr});
  CHECK(null.rule() == "plugin.entry.null");
  CHECK(null.message().find("entry function is NULL") != std::string::npos);
  CHECK(r.skipped().size() == 2);
}

TEST_CASE("registry: the static table lists what a DMEM_STATIC_PLUGINS build links in", "[abi]") {
  PluginSearch s = only({});
  s.static_table = true;
  PluginRegistry r;
  r.discover(s);
  CHECK(r.skipped().empty());
#if DMEM_TEST_STATIC_PLUGINS
  REQUIRE(r.find("dmem.quantizer.fixture_static") != nullptr);
  CHECK(r.find("dmem.quantizer.fixture_static")->source == PluginSource::static_table);
  CHECK(r.find("dmem.quantizer.fixture_static")->path == "fixture_static");
#else
  CHECK(r.plugins().empty());
#endif
}

TEST_CASE("registry: every broken fixture is refused with a specific rule", "[abi]") {
  SECTION("wrong major") {
    const dmem::Status s = refusal("wrong_major");
    CHECK(s.rule() == "plugin.abi.major");
    CHECK(s.hint().find("rebuild the plugin against the headers of this dmem") == 0);
  }
  SECTION("newer minor") {
    const dmem::Status s = refusal("newer_minor");
    CHECK(s.rule() == "plugin.abi.minor");
    CHECK(s.hint().find("update dmem") == 0);
  }
  SECTION("missing entry symbol") {
    const dmem::Status s = refusal("missing_entry");
    CHECK(s.rule() == "plugin.symbol");
    CHECK(s.message() == "not a dmem plugin: it does not export dmem_plugin_entry");
  }
  SECTION("entry hands back no descriptor") {
    const dmem::Status s = refusal("null_descriptor");
    CHECK(s.rule() == "plugin.entry.null");
    CHECK(s.message().find("descriptor") != std::string::npos);
  }
  SECTION("a NULL function in the table") {
    const dmem::Status s = refusal("null_function");
    CHECK(s.rule() == "plugin.entry.null");
    CHECK(s.message() == "dmem_quantizer_vtable.linear is NULL");
  }
  SECTION("probe returns NULL") {
    const dmem::Status s = refusal("probe_null");
    CHECK(s.rule() == "plugin.entry.null");
    CHECK(s.message().find("dmem_plugin_probe()") == 0);
  }
  SECTION("probe returns a zeroed struct") {
    const dmem::Status s = refusal("probe_zero");
    CHECK(s.rule() == "plugin.struct_size");
    CHECK(s.message().find("struct_size is 0") != std::string::npos);
  }
  SECTION("entry throws: the adapter catches it at the boundary") {
    const dmem::Status s = refusal("entry_throws");
    CHECK(s.rule() == "plugin.entry");
    CHECK(s.code() == Errc::internal);
    CHECK(s.message() == "dmem_plugin_entry failed: entry: this CPU lacks AVX2");
  }
  SECTION("the constructor throws: no instance, no capabilities") {
    const dmem::Status s = refusal("create_throws");
    CHECK(s.rule() == "plugin.create");
    CHECK(s.message().find("create: cannot allocate the lookup table") != std::string::npos);
  }
  SECTION("built without kernels for this GPU") {
    const dmem::Status s = refusal("no_kernels", 89);
    CHECK(s.rule() == "plugin.cuda_arch");
    CHECK(s.message() ==
          "carries CUDA kernels for sm_75, sm_90 only, none of which runs on this GPU (sm_89)");
    CHECK(s.hint().find("rebuild the plugin with CMAKE_CUDA_ARCHITECTURES=89") == 0);
  }
}

TEST_CASE("registry: CUDA architectures are checked against the device's", "[abi]") {
  PluginRegistry none;  // no GPU given: nothing to check
  CHECK(none.load(fixture("no_kernels")).is_ok());
  PluginRegistry turing;  // sm_75 SASS runs on sm_75 (and on sm_7x above it)
  turing.set_device_sm(75);
  CHECK(turing.load(fixture("no_kernels")).is_ok());
  CHECK(turing.plugins()[0].caps.cuda_archs == std::vector<std::uint32_t>{75, 90});
  CHECK(turing.plugins()[0].notes.empty());
  // A plugin that also runs on the CPU stays, with a note saying what it lacks.
  PluginRegistry ada;
  ada.set_device_sm(89);
  REQUIRE(ada.load(fixture("cpu_cuda_no_kernels")).is_ok());
  REQUIRE(ada.plugins()[0].notes.size() == 1);
  CHECK(ada.plugins()[0].notes[0].find("CMAKE_CUDA_ARCHITECTURES=89") != std::string::npos);
}
