// What the planner says when it cannot help, and about workloads it was not made for (issue 9,
// "Messages" and "Workload"): the real blocker and the closest plan, --vram 0 as CPU-only,
// frames on image models, Wan's 4k+1 frames, resolutions outside the trained range, and the
// estimate `dmem validate` prints.
#include <catch2/catch.hpp>

#include <algorithm>
#include <string>

#include <nlohmann/json.hpp>

#include "dmem/catalog.hpp"
#include "dmem/plan.hpp"
#include "dmem/quantizer.hpp"
#include "plan/rules.hpp"
#include "support/test_support.hpp"

using namespace dmem;
using dmem::test::cli_path;
using dmem::test::run_command;
using dmem::test::TempDir;

namespace {

constexpr std::uint64_t kGiB = 1024ull * 1024ull * 1024ull;

Hardware machine(const char* gpu, std::uint64_t vram, std::uint64_t ram) {
  HardwareOptions o;
  o.probe = false;
  if (gpu != nullptr) o.gpu = gpu;
  if (vram != 0) o.vram = vram;
  o.ram = ram;
  o.disk = 500 * kGiB;
  auto hw = make_hardware(o);
  REQUIRE(hw);
  return *hw;
}

Model model(const char* name) {
  auto m = catalog_model(name);
  REQUIRE(m);
  return *m;
}

const BudgetNeed* find_need(const std::vector<BudgetNeed>& v, const std::string& rule) {
  for (const auto& b : v)
    if (b.rule == rule) return &b;
  return nullptr;
}

// The largest need / usable ratio of an estimate on this machine (usable 0 counts bytes).
double worst_ratio(const std::vector<BudgetNeed>& needs) {
  double w = 0;
  for (const auto& b : needs)
    w = std::max(
        w, static_cast<double>(b.need) / static_cast<double>(std::max<std::uint64_t>(b.usable, 1)));
  return w;
}

}  // namespace

TEST_CASE("too little RAM is blamed on RAM, and the closest plan fits VRAM", "[plan][messages]") {
  const Model m = model("flux1-dev");
  const Hardware hw = machine("rtx4090", 0, 1 * kGiB);
  auto r = make_plans(m, hw, default_workload(m));
  REQUIRE(r);
  REQUIRE(r->plans.empty());
  const BudgetNeed* ram = find_need(r->least_needs, "budget.ram_load");
  const BudgetNeed* vram = find_need(r->least_needs, "budget.vram");
  REQUIRE(ram != nullptr);
  REQUIRE(vram != nullptr);
  CHECK(ram->need > ram->usable);     // RAM blocks every candidate...
  CHECK(vram->need <= vram->usable);  // ...VRAM does not
  REQUIRE(r->closest);
  const BudgetNeed* cv = find_need(r->closest->budgets, "budget.vram");
  REQUIRE(cv != nullptr);
  CHECK(cv->need <= cv->usable);  // the closest plan breaks RAM only

  std::string out;
  CHECK(run_command(cli_path() + " plan flux1-dev --no-probe --gpu rtx4090 --ram 1GiB", &out) == 1);
  INFO(out);
  CHECK(out.find("blocked by RAM: every candidate needs at least") != std::string::npos);
  CHECK(out.find("blocked by VRAM") == std::string::npos);
  CHECK(out.find("closest plan: ") != std::string::npos);
  CHECK(out.find("--ram 1.25GiB") != std::string::npos);  // 1.12 GiB / 0.9, rounded up
  CHECK(out.find("fits: VRAM") != std::string::npos);
  CHECK(run_command(cli_path() + " plan flux1-dev --no-probe --gpu rtx4090 --ram 1GiB --json", &out,
                    false) == 1);
  auto j = nlohmann::json::parse(out, nullptr, false);
  REQUIRE_FALSE(j.is_discarded());
  REQUIRE(j["blockers"].is_array());
  REQUIRE_FALSE(j["blockers"].empty());
  for (const auto& b : j["blockers"])
    CHECK(b["rule"].get<std::string>().rfind("budget.ram", 0) == 0);
  CHECK(j["closest"]["strategy"].is_object());
  CHECK(j["closest"]["estimate"]["vram_peak_bytes"].is_number_unsigned());
}

TEST_CASE("the closest plan is the one that misses by the least", "[plan][messages]") {
  const Model m = model("qwen-image");
  const Hardware hw = machine(nullptr, 1 * kGiB, 64 * kGiB);
  const Workload wl = default_workload(m);
  auto r = make_plans(m, hw, wl);
  REQUIRE(r);
  REQUIRE(r->plans.empty());
  REQUIRE(r->closest);
  const BudgetNeed* vram = find_need(r->least_needs, "budget.vram");
  REQUIRE(vram != nullptr);
  CHECK(vram->need > vram->usable);
  const BudgetNeed* cv = find_need(r->closest->budgets, "budget.vram");
  REQUIRE(cv != nullptr);
  // Not the 41 GiB everything-resident candidate: a streamed one a few GiB from fitting.
  CHECK(cv->need < 4 * kGiB);
  // No listed candidate that breaks budgets only misses by less.
  const double best = worst_ratio(r->closest->budgets);
  for (const auto& rj : r->rejected) {
    const bool budgets_only =
        std::all_of(rj.violations.begin(), rj.violations.end(),
                    [](const Violation& v) { return v.rule.rfind("budget.", 0) == 0; });
    if (!budgets_only) continue;
    auto e = estimate(m, rj.strategy, hw, wl);
    REQUIRE(e);
    auto ctx = detail::make_rule_context(m, rj.strategy, hw, wl, r->options, builtin_quantizers());
    ctx.estimate = &*e;
    CHECK(worst_ratio(detail::budget_needs(ctx)) >= best * (1 - 1e-9));
  }
  std::string out;
  CHECK(run_command(cli_path() + " plan qwen-image --no-probe --vram 1GiB --ram 64GiB", &out) == 1);
  CHECK(out.find("blocked by VRAM: every candidate needs at least") != std::string::npos);
  CHECK(out.find("--vram ") != std::string::npos);
}

TEST_CASE("plan: --vram 0 plans for the CPU only", "[plan][messages][hardware]") {
  HardwareOptions o;
  o.probe = false;
  o.vram = 0;
  o.ram = 64 * kGiB;
  auto hw = make_hardware(o);
  REQUIRE(hw);
  CHECK(hw->gpus.empty());
  const Model m = model("sdxl");
  auto r = make_plans(m, *hw, default_workload(m));
  REQUIRE(r);
  REQUIRE_FALSE(r->plans.empty());
  for (const auto& cs : r->plans.front().strategy.components)
    CHECK(cs.placement.kind == PlacementKind::cpu);

  std::string out;
  CHECK(run_command(cli_path() + " plan sdxl --no-probe --vram 0 --ram 64GiB", &out) == 0);
  CHECK(out.find("CPU only") != std::string::npos);
  CHECK(out.find("on CPU") != std::string::npos);
  // Too little RAM for the CPU: RAM is named, never a VRAM of 0 bytes.
  CHECK(run_command(cli_path() + " plan qwen-image --no-probe --vram 0 --ram 8GiB", &out) == 1);
  CHECK(out.find("blocked by RAM") != std::string::npos);
  CHECK(out.find("VRAM") == std::string::npos);
  // A named GPU with no VRAM contradicts itself.
  CHECK(run_command(cli_path() + " plan sdxl --no-probe --gpu rtx4090 --vram 0", &out) == 2);
  CHECK(out.find("hardware.gpus") != std::string::npos);
  CHECK(run_command(cli_path() + " plan sdxl --no-probe --gpus 0 --vram 0 --ram 64GiB", &out) == 0);
}

TEST_CASE("frames on an image model are refused", "[plan][messages][workload]") {
  const Model m = model("flux1-dev");
  Workload wl = default_workload(m);
  wl.frames = 5;
  const Hardware hw = machine("rtx4090", 0, 64 * kGiB);
  auto r = make_plans(m, hw, wl);
  REQUIRE_FALSE(r);
  CHECK(r.status().code() == Errc::invalid_argument);
  CHECK(r.status().to_string().find("workload.frames") != std::string::npos);
  std::string out;
  CHECK(run_command(cli_path() + " plan flux1-dev --no-probe --gpu rtx4090 --frames 5", &out) == 2);
  CHECK(out.find("makes images") != std::string::npos);
  CHECK(out.find("--frames") != std::string::npos);
  // One frame is an image: accepted.
  CHECK(run_command(cli_path() + " plan sdxl --no-probe --gpu rtx4090 --ram 64GiB --frames 1",
                    &out) == 0);
}

TEST_CASE("Wan takes 4k+1 frames and names the nearest valid counts",
          "[plan][messages][workload]") {
  const Model m = model("wan21-t2v-14b");
  const Hardware hw = machine("h100", 0, 128 * kGiB);
  Workload wl = default_workload(m);
  wl.frames = 80;
  auto r = make_plans(m, hw, wl);
  REQUIRE_FALSE(r);
  CHECK(r.status().to_string().find("77 or 81") != std::string::npos);
  wl.frames = 49;
  CHECK(make_plans(m, hw, wl));
  std::string out;
  CHECK(run_command(cli_path() + " plan wan21-t2v-14b --no-probe --gpu h100 --frames 30", &out) ==
        2);
  CHECK(out.find("4k+1") != std::string::npos);
  CHECK(out.find("29 or 33") != std::string::npos);
  // validate() holds the same rule.
  Strategy s;
  auto v = validate(m, s, hw, [&] {
    Workload w = default_workload(m);
    w.frames = 2;
    return w;
  }());
  REQUIRE_FALSE(v);
  CHECK(v.status().to_string().find("workload.frames") != std::string::npos);
  // Longer than trained: a warning, not an error.
  wl.frames = 121;
  auto longer = make_plans(m, hw, wl);
  REQUIRE(longer);
  REQUIRE(longer->warnings.size() == 1);
  CHECK(longer->warnings[0].find("81") != std::string::npos);
}

TEST_CASE("resolutions outside the trained range are warned about", "[plan][messages][workload]") {
  const Model m = model("qwen-image");
  const Hardware hw = machine("h100", 0, 128 * kGiB);
  Workload wl = default_workload(m);
  auto fine = make_plans(m, hw, wl);
  REQUIRE(fine);
  CHECK(fine->warnings.empty());
  wl.width = wl.height = 4096;
  auto big = make_plans(m, hw, wl);
  REQUIRE(big);
  REQUIRE(big->warnings.size() == 1);
  CHECK(big->warnings[0].find("4096x4096") != std::string::npos);
  CHECK(big->warnings[0].find("1328x1328") != std::string::npos);  // the range is named
  CHECK(big->warnings[0].find("above") != std::string::npos);
  wl.width = wl.height = 1000;  // not a multiple of 16
  auto odd = make_plans(m, hw, wl);
  REQUIRE(odd);
  REQUIRE(odd->warnings.size() == 1);
  CHECK(odd->warnings[0].find("992 or 1008") != std::string::npos);

  std::string out;
  CHECK(run_command(cli_path() + " plan qwen-image --no-probe --gpu h100 --ram 128GiB --width 4096 "
                                 "--height 4096",
                    &out) == 0);
  CHECK(out.find("warning: 4096x4096") != std::string::npos);
  CHECK(run_command(cli_path() + " plan flux1-dev --no-probe --gpu h100 --ram 128GiB --width 256 "
                                 "--height 256 --json",
                    &out, false) == 0);
  auto j = nlohmann::json::parse(out, nullptr, false);
  REQUIRE_FALSE(j.is_discarded());
  REQUIRE(j["warnings"].size() == 1);
  CHECK(j["warnings"][0].get<std::string>().find("below") != std::string::npos);
}

TEST_CASE("dmem validate prints the estimate of a strategy it accepts", "[validate][cli]") {
  TempDir dir;
  const std::string flags = " --model flux1-dev --no-probe --gpu rtx4090 --ram 64GiB --disk 500GiB";
  const std::string good = dir.file("good.json");
  test::write_file(good, R"({"components": [
      {"component": "transformer", "placement": {"kind": "group_offload", "use_stream": true}},
      {"component": "text_encoder_2", "placement": "dropped"}]})");
  std::string out;
  REQUIRE(run_command(cli_path() + " validate " + good + flags, &out) == 0);
  INFO(out);
  CHECK(out.find("valid: no rule or budget is broken") != std::string::npos);
  for (const char* s : {"estimate (1024x1024, 28 steps)", "phase", "VRAM peak", "activations",
                        "load", "encode", "denoise", "decode", "s/step", "total", "28 x "})
    CHECK(out.find(s) != std::string::npos);

  REQUIRE(run_command(cli_path() + " validate " + good + flags + " --json", &out, false) == 0);
  auto j = nlohmann::json::parse(out, nullptr, false);
  REQUIRE_FALSE(j.is_discarded());
  REQUIRE(j["estimate"].is_object());
  CHECK(j["estimate"]["vram_peak_bytes"].get<std::uint64_t>() > 0);
  CHECK(j["estimate"]["step_seconds"].get<double>() > 0);
  REQUIRE(j["estimate"]["phases"].size() == 4);
  CHECK(j["estimate"]["phases"][2]["phase"] == "denoise");

  // A strategy that breaks a composition rule gets no estimate (it cannot run at all).
  const std::string bad = dir.file("bad.json");
  test::write_file(bad, R"({"components": [
      {"component": "transformer", "placement": {"kind": "group_offload", "blocks_per_group": 2, "use_stream": true}}]})");
  CHECK(run_command(cli_path() + " validate " + bad + flags, &out) == 1);
  CHECK(out.find("estimate (") == std::string::npos);
  // One that breaks only a budget shows by how much.
  CHECK(run_command(cli_path() + " validate " + good +
                        " --model flux1-dev --no-probe --gpu rtx4090 --ram 4GiB --disk 500GiB",
                    &out) == 1);
  CHECK(out.find("budget.ram") != std::string::npos);
  CHECK(out.find("estimate (") != std::string::npos);
}
