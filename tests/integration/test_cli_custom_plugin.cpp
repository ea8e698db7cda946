// The out-of-tree sample plugin (samples/custom_quantizer) through the `dmem` command, found via
// DMEM_PLUGIN_PATH: listed, offered by `dmem plan`, accepted by `dmem validate` in a strategy,
// and run by `dmem run` on the CPU. Without the path, a strategy naming it is refused.
#include <catch2/catch.hpp>

#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>

#include "support/test_support.hpp"

using dmem::test::cli_path;
using dmem::test::run_command;

namespace {

constexpr const char* kSampleId = "example.quantizer.int4_g32";

std::string with_sample(const std::string& args) {
  const std::string dir = std::filesystem::path(DMEM_TEST_PLUGIN_INT4_G32).parent_path().string();
  return "DMEM_PLUGIN_PATH='" + dir + "' " + cli_path() + " " + args;
}

std::string strategy_file(const dmem::test::TempDir& dir) {
  const std::string path = dir.file("int4.json");
  std::string text = R"({"components": [
    {"component": "transformer", "placement": {"kind": "cpu"},
     "storage": {"kind": "quantized", "quantizer": ")";
  text += kSampleId;
  text += R"("}},
    {"component": "text_encoder", "placement": {"kind": "cpu"}},
    {"component": "text_encoder_2", "placement": {"kind": "cpu"}},
    {"component": "vae", "placement": {"kind": "cpu"}}]})";
  dmem::test::write_file(path, text);
  return path;
}

}  // namespace

TEST_CASE("cli custom plugin: listed, planned, validated and run from DMEM_PLUGIN_PATH",
          "[plugins][cli]") {
  std::string out;
  REQUIRE(run_command(with_sample("plugins --json"), &out, false) == 0);
  const auto listed = nlohmann::json::parse(out, nullptr, false);
  REQUIRE(listed.is_object());
  bool found = false;
  for (const auto& p : listed["plugins"]) found = found || p["id"] == kSampleId;
  CHECK(found);

  const std::string machine = " --no-probe --gpu none --ram 64GiB --disk 500GiB";
  REQUIRE(run_command(with_sample("plan flux1-schnell --json" + machine), &out, false) == 0);
  const auto plans = nlohmann::json::parse(out, nullptr, false);
  REQUIRE(plans.is_object());
  bool planned = false;
  for (const auto& p : plans["plans"])
    for (const auto& c : p["strategy"]["components"])
      planned = planned || c["storage"].value("quantizer", "") == kSampleId;
  CHECK(planned);

  dmem::test::TempDir dir;
  const std::string strategy = strategy_file(dir);
  CHECK(run_command(with_sample("validate " + strategy + " --model flux1-schnell" + machine),
                    &out) == 0);
  // Not found: the strategy names a quantizer no plugin provides.
  CHECK(run_command(cli_path() + " validate " + strategy + " --model flux1-schnell" + machine,
                    &out) == 2);
  CHECK(out.find(kSampleId) != std::string::npos);

  REQUIRE(run_command(with_sample("run flux1-schnell --scale-down 32 --steps 1 --json --strategy " +
                                  strategy + machine),
                      &out, false) == 0);
  const auto ran = nlohmann::json::parse(out, nullptr, false);
  REQUIRE(ran.is_object());
  CHECK(ran["step_seconds"]["measured"].get<double>() > 0);
}
