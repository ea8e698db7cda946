// `dmem plugins` against the fixture plugins: a directory on DMEM_PLUGIN_PATH with good and broken
// libraries, and --path given on the command line.
#include <catch2/catch.hpp>

#include <filesystem>
#include <string>

#include <nlohmann/json.hpp>

#include "support/test_support.hpp"

using dmem::test::run_command;

namespace {

namespace fs = std::filesystem;

constexpr std::size_t kStatic = DMEM_TEST_STATIC_PLUGINS ? 1 : 0;

/// A plugin directory holding the good fixture and a few broken ones.
void fill(const dmem::test::TempDir& dir) {
  for (const char* v : {"good", "wrong_major", "missing_entry", "entry_throws", "no_kernels"}) {
    const std::string name = std::string("dmem_plugin_fixture_") + v + ".so";
    fs::copy_file(std::string(DMEM_TEST_FIXTURE_DIR) + "/" + name, dir.path() / name);
  }
  fs::copy_file(std::string(DMEM_TEST_FIXTURE_DIR) + "/dmem_plugin_fixture_good.so",
                dir.path() / "libstray.so");
}

std::string cli_with_path(const dmem::test::TempDir& dir) {
  return "DMEM_PLUGIN_PATH='" + dir.path().string() + "' " + dmem::test::cli_path();
}

/// The stock plugins (plugins/) the CLI also finds: beside itself in <bin>/plugins, or in its
/// static table in a DMEM_STATIC_PLUGINS build; with these arguments (a CUDA-only one is skipped
/// for an --sm it has no kernels for).
std::size_t stock_plugins(const std::string& command_and_args) {
  std::string out;
  if (run_command(command_and_args + " --json", &out, false) != 0) return 0;
  const std::string dir = (fs::path(dmem::test::cli_path()).parent_path() / "plugins").string();
  std::size_t n = 0;
  const auto j = nlohmann::json::parse(out);
  for (const auto& p : j["plugins"]) {
    const bool beside = p["path"].get<std::string>().rfind(dir + "/", 0) == 0;
    const bool linked_in =
        p["source"] == "static" && p["id"] != "dmem.quantizer.fixture_static";  // kStatic
    if (beside || linked_in) ++n;
  }
  return n;
}

}  // namespace

TEST_CASE("dmem plugins lists plugins and every skipped file with why", "[cli][plugins]") {
  dmem::test::TempDir dir;
  fill(dir);
  std::string out;
  REQUIRE(run_command(cli_with_path(dir) + " plugins --sm 89", &out) == 0);
  INFO(out);
  // A DMEM_STATIC_PLUGINS build also lists the static fixture, from its table; the stock
  // plugins built beside the CLI are listed too.
  const std::size_t stock = stock_plugins(cli_with_path(dir) + " plugins --sm 89");
  CHECK(out.find("plugins (" + std::to_string(1 + kStatic + stock) + ")\n") == 0);
  CHECK(out.find("  dmem.quantizer.fixture_good 1.0.0 · quantizer · plugin ABI 1.0 · " +
                 dir.file("dmem_plugin_fixture_good.so")) != std::string::npos);
  CHECK(out.find("    runs on      cpu\n") != std::string::npos);
  CHECK(out.find("    accepts      f32\n") != std::string::npos);
  CHECK(out.find("    CUDA archs   none (no CUDA kernels of its own)\n") != std::string::npos);
  CHECK(out.find("skipped (5)\n") != std::string::npos);
  CHECK(out.find("[rule plugin.abi.major]") != std::string::npos);
  CHECK(out.find("[rule plugin.symbol]") != std::string::npos);
  CHECK(out.find("entry: this CPU lacks AVX2 [rule plugin.entry]") != std::string::npos);
  CHECK(out.find("none of which runs on this GPU (sm_89) [rule plugin.cuda_arch]") !=
        std::string::npos);
  CHECK(out.find(dir.file("libstray.so") + ": not loaded") != std::string::npos);
  CHECK(out.find("searched (GPU sm_89): static table, " + dir.path().string()) !=
        std::string::npos);
}

TEST_CASE("dmem plugins --json decodes capabilities; --path comes first", "[cli][plugins]") {
  dmem::test::TempDir dir;
  fill(dir);
  dmem::test::TempDir first;
  fs::copy_file(std::string(DMEM_TEST_FIXTURE_DIR) + "/dmem_plugin_fixture_no_kernels.so",
                first.path() / "dmem_plugin_no_kernels.so");
  std::string out;
  REQUIRE(run_command(
              cli_with_path(dir) + " plugins --json --sm 75 --path '" + first.path().string() + "'",
              &out, false) == 0);
  const auto j = nlohmann::json::parse(out);
  const std::size_t stock =
      stock_plugins(cli_with_path(dir) + " plugins --sm 75 --path '" + first.path().string() + "'");
  CHECK(j["device_sm"] == 75);
  CHECK(j["searched"][0] == first.path().string());
  CHECK(j["searched"][1] == dir.path().string());
  REQUIRE(j["plugins"].size() == 2 + kStatic + stock);
  // The --path copy wins; the one on DMEM_PLUGIN_PATH is a duplicate. Static plugins (the
  // fixture, and the stock ones in a DMEM_STATIC_PLUGINS build) come first, so find by id.
  std::size_t at = j["plugins"].size(), good_at = j["plugins"].size();
  for (std::size_t i = 0; i < j["plugins"].size(); ++i) {
    if (j["plugins"][i]["id"] == "dmem.quantizer.fixture_no_kernels") at = i;
    if (j["plugins"][i]["id"] == "dmem.quantizer.fixture_good") good_at = i;
  }
  REQUIRE(at < j["plugins"].size());
  CHECK(good_at == at + 1);  // --path is searched before DMEM_PLUGIN_PATH
  const auto& nk = j["plugins"][at];
  CHECK(nk["id"] == "dmem.quantizer.fixture_no_kernels");
  CHECK(nk["source"] == "file");
  CHECK(nk["path"] == first.file("dmem_plugin_no_kernels.so"));
  CHECK(nk["abi"] == "1.0");
  CHECK(nk["kind"] == "quantizer");
  CHECK(nk["caps"]["exec_devices"] == nlohmann::json::array({"cuda"}));
  CHECK(nk["caps"]["storage_tiers"] ==
        nlohmann::json::array({"vram", "pinned", "pageable", "disk"}));
  CHECK(nk["caps"]["input_dtypes"] == nlohmann::json::array({"f32"}));
  CHECK(nk["caps"]["flags"] == nlohmann::json::array({"moves-packed"}));
  CHECK(nk["caps"]["cuda_archs"] == nlohmann::json::array({75, 90}));
  CHECK(nk["caps"]["quality"] == "int8");
  bool duplicate = false;
  for (const auto& s : j["skipped"]) {
    CHECK_FALSE(s["hint"].get<std::string>().empty());
    if (s["rule"] == "plugin.duplicate")
      duplicate = s["path"] == dir.file("dmem_plugin_fixture_no_kernels.so");
  }
  CHECK(duplicate);
}

TEST_CASE("dmem plugins: a bad flag is exit status 2", "[cli][plugins]") {
  std::string out;
  CHECK(run_command(dmem::test::cli_path() + " plugins --sm nine", &out) == 2);
  CHECK(out.find("dmem plugins:") == 0);
}
