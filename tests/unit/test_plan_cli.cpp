// `dmem plan` through the CLI: the JSON keys of issue 3, --explain, --svg, the table and the
// exit status when nothing fits.
#include <catch2/catch.hpp>

#include <string>

#include <nlohmann/json.hpp>

#include "support/test_support.hpp"

using dmem::test::cli_path;
using dmem::test::run_command;
using dmem::test::TempDir;

namespace {

const std::string kMachine = " --no-probe --gpu rtx5090 --ram 60GiB --disk 500GiB";

}  // namespace

TEST_CASE("dmem plan --json has the documented keys", "[plan][cli]") {
  std::string out;
  const int rc = run_command(cli_path() + " plan qwen-image" + kMachine + " --json", &out, false);
  REQUIRE(rc == 0);
  auto j = nlohmann::json::parse(out, nullptr, false);
  REQUIRE_FALSE(j.is_discarded());
  REQUIRE(j.is_object());
  CHECK(j.contains("hardware"));
  CHECK(j.contains("workload"));
  REQUIRE(j["plans"].is_array());
  REQUIRE_FALSE(j["plans"].empty());
  for (const auto& p : j["plans"]) {
    CHECK(p["id"].is_string());
    REQUIRE(p["strategy"].is_object());
    CHECK(p["strategy"]["components"].is_array());
    const auto& e = p["estimate"];
    for (const char* k :
         {"vram_peak_bytes", "ram_peak_bytes", "load_ram_peak_bytes", "pinned_bytes", "disk_bytes"})
      CHECK(e[k].is_number_unsigned());
    for (const char* k : {"load_seconds", "step_seconds", "total_seconds"}) CHECK(e[k].is_number());
    CHECK(p["quality_tier"].is_string());
    CHECK(p["notes"].is_array());
    CHECK(p.size() == 5);
  }
  REQUIRE(j["rejected"].is_array());
  REQUIRE_FALSE(j["rejected"].empty());
  for (const auto& r : j["rejected"]) {
    CHECK(r["strategy"].is_object());
    REQUIRE(r["violations"].is_array());
    REQUIRE_FALSE(r["violations"].empty());
    CHECK(r["violations"][0]["rule"].is_string());
    CHECK(r["violations"][0]["message"].is_string());
  }
}

TEST_CASE("dmem plan prints the grouped table and the rejected candidates", "[plan][cli]") {
  std::string out;
  REQUIRE(run_command(cli_path() + " plan qwen-image" + kMachine + " --width 1328 --height 1328",
                      &out) == 0);
  CHECK(out.find("Qwen-Image · ") == 0);
  CHECK(out.find("1328×1328, 50 steps · prefer balanced") != std::string::npos);
  CHECK(out.find("offloading / casting") != std::string::npos);
  CHECK(out.find("quantization") != std::string::npos);
  CHECK(out.find("VRAM peak") != std::string::npos);
  CHECK(out.find("rejected (") != std::string::npos);
  CHECK(out.find("budget.vram") != std::string::npos);
  CHECK(out.find("--show-rejected") != std::string::npos);
}

TEST_CASE("dmem plan --explain prints the arithmetic of one plan", "[plan][cli]") {
  std::string out;
  REQUIRE(run_command(cli_path() + " plan qwen-image" + kMachine + " --explain 1", &out) == 0);
  for (const char* s : {"plan 1", "load:", "encode:", "denoise:", "decode:", "VRAM =", "RAM =",
                        "TFLOP", "budgets", "ranking"})
    CHECK(out.find(s) != std::string::npos);
  CHECK(run_command(cli_path() + " plan qwen-image" + kMachine + " --explain 99999", &out) == 2);
  CHECK(out.find("no plan '99999'") != std::string::npos);
}

TEST_CASE("dmem plan --svg writes stacked bars per plan", "[plan][cli]") {
  TempDir dir;
  const std::string svg = dir.file("plans.svg");
  std::string out;
  REQUIRE(run_command(cli_path() + " plan qwen-image" + kMachine + " --svg " + svg, &out) == 0);
  std::string text;
  {
    auto bytes = dmem::test::read_file(svg);
    text.assign(bytes.begin(), bytes.end());
  }
  CHECK(text.rfind("<?xml", 0) == 0);
  CHECK(text.find("<svg") != std::string::npos);
  CHECK(text.find("</svg>") != std::string::npos);
  // Balanced tags: every <g opens and closes, every <rect closes.
  auto count = [&](const std::string& s) {
    std::size_t n = 0;
    for (auto p = text.find(s); p != std::string::npos; p = text.find(s, p + 1)) ++n;
    return n;
  };
  CHECK(count("<g ") == count("</g>"));
  CHECK(count("<rect") == count("</rect>") + count("\"/>") - count("<line"));
  CHECK(count("class=\"plan\"") == 6);
  for (int i = 1; i <= 6; ++i)
    CHECK(text.find("id=\"plan-" + std::to_string(i) + "\"") != std::string::npos);
  CHECK(count("class=\"bar vram weights\"") == 6 * 4);
  CHECK(text.find("class=\"budget vram usable\"") != std::string::npos);
}

TEST_CASE("dmem plan exits 1 with a reason when nothing fits", "[plan][cli]") {
  std::string out;
  const int rc =
      run_command(cli_path() + " plan qwen-image --no-probe --gpu none --ram 8GiB", &out);
  CHECK(rc == 1);
  CHECK(out.find("no viable plan") != std::string::npos);
  CHECK(out.find("needs") != std::string::npos);
  CHECK(out.find("usable") != std::string::npos);
  CHECK(run_command(cli_path() + " plan qwen-image --no-probe --gpu rtx5090 --prefer fastest",
                    &out) == 2);
  CHECK(out.find("--prefer") != std::string::npos);
}
