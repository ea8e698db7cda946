// Names that are not UTF-8 in JSON output (issue 6, class 5). nlohmann's dump throws
// type_error.316 on them; in the library, built with -fno-exceptions, a throw is an abort. These
// inputs run through that library: every writer replaces bad bytes and nothing aborts.
#include <catch2/catch.hpp>

#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "dmem/model.hpp"
#include "dmem/strategy.hpp"
#include "dmem/writer.hpp"
#include "format/json_util.hpp"
#include "support/test_support.hpp"

namespace {

constexpr const char* kReplacement = "\xef\xbf\xbd";  // U+FFFD

// A GGUF with one f32 tensor whose name has a 0xFF byte in it.
std::string write_hostile_gguf(const dmem::test::TempDir& dir) {
  static const float data[4] = {1, 2, 3, 4};
  std::vector<dmem::TensorData> tensors(1);
  tensors[0].name = "blk.0.attn\xff\xfe.weight";
  tensors[0].dtype = dmem::DType::f32;
  tensors[0].shape = {2, 2};
  tensors[0].data = data;
  tensors[0].nbytes = sizeof data;
  const std::string path = dir.file("hostile.gguf");
  REQUIRE(dmem::write_gguf(path, tensors).is_ok());
  return path;
}

}  // namespace

TEST_CASE("the library under test is built without exceptions", "[hostile][utf8]") {
  // tests/CMakeLists.txt reads dmem_objects' compile options: the point of this file is to run
  // hostile names through -fno-exceptions code, where a throw cannot be caught.
  CHECK(DMEM_TEST_LIB_NO_EXCEPTIONS == 1);
}

TEST_CASE("dump_json replaces invalid UTF-8 instead of throwing", "[hostile][utf8]") {
  nlohmann::json j;
  j["name"] = std::string("bad\xff\xc0name");
  const std::string out = dmem::detail::dump_json(j, 2);
  CHECK(out.find(kReplacement) != std::string::npos);
  CHECK(dmem::detail::is_valid_utf8(out));
  CHECK_FALSE(nlohmann::json::parse(out, nullptr, false).is_discarded());
}

TEST_CASE("strategy_to_json survives a component name that is not UTF-8", "[hostile][utf8]") {
  dmem::Strategy st;
  st.components.push_back({});
  st.components[0].component =
      "trans\xff"
      "former";
  const std::string out = dmem::strategy_to_json(st, 2);  // aborted before the fix
  CHECK(out.find(kReplacement) != std::string::npos);
  CHECK_FALSE(nlohmann::json::parse(out, nullptr, false).is_discarded());
}

TEST_CASE("a GGUF tensor name with a 0xFF byte opens and prints as JSON", "[hostile][utf8][cli]") {
  dmem::test::TempDir dir;
  const std::string path = write_hostile_gguf(dir);
  auto model = dmem::open_model(path);
  REQUIRE(model.is_ok());

  std::string out, err_out;
  const int rc = dmem::test::run_command(
      dmem::test::cli_path() + " inspect " + path + " --json --tensors", &out, false);
  INFO(out);
  CHECK(rc == 0);
  auto j = nlohmann::json::parse(out, nullptr, false);
  REQUIRE_FALSE(j.is_discarded());
  CHECK(out.find(kReplacement) != std::string::npos);
  CHECK(out.find("json.exception") == std::string::npos);
}

TEST_CASE("the --json output of hardware and validate survives invalid UTF-8 in paths",
          "[hostile][utf8][cli]") {
  dmem::test::TempDir dir;
  const std::string bad_dir = "\"" + dir.path().string() + "/$(printf 'c\\377d')\"";
  std::string out;
  int rc = dmem::test::run_command(
      dmem::test::cli_path() + " hardware --no-probe --gpu rtx4090 --json --cache-dir " + bad_dir,
      &out, false);
  INFO(out);
  CHECK(rc == 0);
  CHECK_FALSE(nlohmann::json::parse(out, nullptr, false).is_discarded());
  CHECK(out.find(kReplacement) != std::string::npos);

  // A model whose file name is not UTF-8 (its name comes from the file): validate and plan.
  const std::string hostile = write_hostile_gguf(dir);
  REQUIRE(std::rename(hostile.c_str(), dir.file("m\xff.gguf").c_str()) == 0);
  const std::string model = "\"" + dir.path().string() + "/$(printf 'm\\377.gguf')\"";
  const std::string strategy = dir.file("s.json");
  dmem::test::write_file(strategy, "{\"components\": []}");
  const std::string machine = " --no-probe --gpu rtx4090 --ram 64GiB --json";
  rc = dmem::test::run_command(
      dmem::test::cli_path() + " validate " + strategy + " --model " + model + machine, &out,
      false);
  INFO(out);
  CHECK(rc == 0);
  auto j = nlohmann::json::parse(out, nullptr, false);
  REQUIRE_FALSE(j.is_discarded());
  REQUIRE(j["model"].is_string());
  CHECK(j["model"].get<std::string>().find("m\xef\xbf\xbd.gguf") != std::string::npos);
  rc = dmem::test::run_command(dmem::test::cli_path() + " plan " + model + machine, &out, false);
  CHECK(rc == 0);
  CHECK_FALSE(nlohmann::json::parse(out, nullptr, false).is_discarded());
}
