#include <catch2/catch.hpp>

#include <string>

#include "dmem/catalog.hpp"
#include "dmem/hardware.hpp"
#include "dmem/plan.hpp"

using namespace dmem;

namespace {
constexpr std::uint64_t kGiB = 1024ull * 1024ull * 1024ull;

Hardware described(const char* gpu, std::uint64_t ram) {
  HardwareOptions o;
  o.probe = false;
  o.gpu = gpu;
  o.ram = ram;
  o.disk = 500 * kGiB;
  auto hw = make_hardware(o);
  REQUIRE(hw);
  return *hw;
}
}  // namespace

TEST_CASE("every catalog model plans on a GPU machine and a CPU-only one", "[plan]") {
  const Hardware gpu = described("rtx4090", 64 * kGiB);
  const Hardware cpu = described("none", 64 * kGiB);
  for (const auto& entry : catalog_entries()) {
    INFO(entry.name);
    auto m = catalog_model(entry.name);
    REQUIRE(m);
    const Workload wl = default_workload(*m);
    for (const Hardware* hw : {&gpu, &cpu}) {
      auto report = make_plans(*m, *hw, wl);
      REQUIRE(report);
      CHECK(report->candidates > 0);
      CHECK(report->plans.size() + report->rejected.size() > 0);
      for (const auto& p : report->plans) {
        CHECK(p.estimate.step_seconds > 0);
        CHECK(p.estimate.vram_peak_bytes <= (hw->gpus.empty() ? 0 : hw->gpus[0].vram_total));
      }
    }
    // A 24 GiB card with 64 GiB of RAM runs all of them one way or another.
    CHECK_FALSE(make_plans(*m, gpu, wl)->plans.empty());
  }
}

TEST_CASE("default workloads follow each pipeline's usual settings", "[plan]") {
  auto wl = [](const char* name) { return default_workload(*catalog_model(name)); };
  CHECK(wl("qwen-image").width == 1328);
  CHECK(wl("qwen-image").steps == 50);
  CHECK(wl("flux1-dev").steps == 28);
  CHECK(wl("flux1-schnell").steps == 4);
  CHECK(wl("sd35-large").steps == 28);
  CHECK(wl("sdxl").width == 1024);
  const Workload wan = wl("wan21-t2v-14b");
  CHECK(wan.width == 832);
  CHECK(wan.height == 480);
  CHECK(wan.frames == 81);
  CHECK(default_workload(Model{}).width == 1024);
}

TEST_CASE("Wan2.1's fp32 transformer gets a bf16 downcast, ranked like any storage", "[plan]") {
  auto m = catalog_model("wan21-t2v-14b");
  REQUIRE(m);
  const Workload wl = default_workload(*m);
  const Hardware hw = described("rtx4090", 64 * kGiB);
  auto r = make_plans(*m, hw, wl);
  REQUIRE(r);
  REQUIRE_FALSE(r->plans.empty());
  // fp32 and bf16 compute the same numbers (the GEMM runs in bf16 either way), so the downcast
  // is native quality at half the bytes: the first plan stores the transformer in bf16.
  const ComponentStrategy* t = r->plans.front().strategy.find("transformer");
  REQUIRE(t != nullptr);
  CHECK(t->storage.kind == StorageKind::layerwise_cast);
  CHECK(t->storage.cast_dtype == DType::bf16);
  CHECK(r->plans.front().quality_tier == "native");
  // Not offered where nothing is wider than 16 bits.
  auto q =
      make_plans(*catalog_model("qwen-image"), hw, default_workload(*catalog_model("qwen-image")));
  REQUIRE(q);
  for (const auto& p : q->plans)
    for (const auto& cs : p.strategy.components)
      CHECK_FALSE(
          (cs.storage.kind == StorageKind::layerwise_cast && cs.storage.cast_dtype == DType::bf16));
}
