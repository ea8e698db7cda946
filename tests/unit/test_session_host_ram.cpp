// Host RAM under pressure: a pinned or pageable budget cut moves the weights' homes down the tiers
// (pinned, then pageable, then the disk tier) through a re-plan, and the loader's staging window
// follows the RAM available (MemAvailable, cgroup limits; here an injected probe) as it changes.
#include <catch2/catch.hpp>

#include <atomic>
#include <string>

#include "dmem/hardware.hpp"
#include "dmem/plan.hpp"
#include "dmem/session.hpp"
#include "support/runtime_fixture.hpp"
#include "support/test_support.hpp"

using namespace dmem;
using dmem::test::TempDir;

namespace {

ReplanOptions replan_options() {
  ReplanOptions ro;
  for (const GpuPreset& p : gpu_presets())
    if (p.id == "rtx4090") ro.hardware.gpus.push_back(p.spec);
  ro.hardware.ram_total = 64ull << 30;
  ro.hardware.ram_available = 64ull << 30;
  ro.hardware.disk_free = 1ull << 40;
  ro.hardware.cpu_cores = 2;
  ro.workload.steps = 4;
  ro.workload.activation_gib = 0.0;
  ro.plan.margin = 0.0;
  return ro;
}

Placement offload(Tier park) {
  Placement p;
  p.kind = PlacementKind::group_offload;
  p.park = park;
  return p;
}

Storage fp8() {
  Storage s;
  s.kind = StorageKind::layerwise_cast;
  s.cast_dtype = DType::f8_e4m3;
  return s;
}

}  // namespace

TEST_CASE("RAM budget cuts move homes from pinned to pageable to the disk tier",
          "[runtime][pressure][replan][ram]") {
  TempDir dir;
  Model model = test::make_block_model(dir.file("m.safetensors"), 6, 64);
  model.components.at(0).role = Role::denoiser;
  std::uint64_t expected = 0;
  {
    auto plain = Session::open(model, test::one_component(Placement{}));
    REQUIRE(plain.has_value());
    expected = test::run_workload(*plain, 1).value();
  }
  SessionOptions options;
  options.replan = replan_options();
  // Room for about three of the six blocks: resident is never the answer.
  options.device_budget = 200u << 10;
  auto session = Session::open(model, test::one_component(offload(Tier::pinned)), options);
  REQUIRE(session.has_value());
  REQUIRE(test::run_workload(*session, 1).value() == expected);
  REQUIRE(session->stats().pinned.in_use > 0);

  auto pinned = session->set_budget(StoreKind::pinned, 1);
  INFO((pinned ? std::string("ok") : pinned.status().to_string()));
  REQUIRE(pinned.has_value());
  CHECK(pinned->replanned);
  CHECK(session->stats().pinned.in_use == 0);
  CHECK(session->stats().replans == 1);
  REQUIRE(test::run_workload(*session, 1).value() == expected);

  if (session->stats().pageable.in_use > 0) {
    auto pageable = session->set_budget(StoreKind::pageable, 1);
    INFO((pageable ? std::string("ok") : pageable.status().to_string()));
    REQUIRE(pageable.has_value());
    CHECK(pageable->replanned);
    CHECK(session->stats().pageable.in_use == 0);
    REQUIRE(test::run_workload(*session, 1).value() == expected);
  }
  // The last tier: the weights stream from the checkpoint itself.
  CHECK(session->stats().pinned.in_use == 0);
  CHECK(session->stats().pageable.in_use == 0);
  CHECK(session->stats().copies_to_host == 0);
}

TEST_CASE("the loader's staging window shrinks to the RAM available instead of failing",
          "[runtime][pressure][ram]") {
  TempDir dir;
  const Model model = test::make_block_model(dir.file("m.safetensors"), 8, 96);
  const Strategy strategy = test::one_component(offload(Tier::pinned), fp8());
  std::uint64_t expected = 0;
  std::uint64_t unbounded_peak = 0;
  SessionOptions base;
  base.io_threads = 4;
  base.staging_bytes = 64u << 10;
  const std::uint64_t buffer = 2 * (64u << 10);  // input and output halves
  {
    SessionOptions options = base;
    options.host_memory_probe = [] { return std::uint64_t{1} << 40; };
    auto session = Session::open(model, strategy, options);
    REQUIRE(session.has_value());
    expected = test::run_workload(*session, 1).value();
    unbounded_peak = session->stats().staging_peak;
    CHECK(session->stats().staging_waits == 0);
  }
  REQUIRE(unbounded_peak >= buffer);

  SECTION("little RAM from the start: one buffer at a time") {
    SessionOptions options = base;
    // Less than a buffer available beside what the loader stages already.
    options.host_memory_probe = [&] { return buffer / 2; };
    auto session = Session::open(model, strategy, options);
    REQUIRE(session.has_value());
    CHECK(session->stats().staging_peak <= buffer);
    CHECK(session->stats().staging_waits > 0);
    REQUIRE(test::run_workload(*session, 1).value() == expected);
  }
  SECTION("RAM taken by another program during the load") {
    std::atomic<int> calls{0};
    SessionOptions options = base;
    // Plenty for the first probes, then a container limit lowered to one buffer's worth.
    options.host_memory_probe = [&]() -> std::uint64_t {
      return calls.fetch_add(1) < 2 ? (std::uint64_t{1} << 40) : buffer / 2;
    };
    auto session = Session::open(model, strategy, options);
    REQUIRE(session.has_value());
    CHECK(calls.load() >= 3);
    CHECK(session->stats().staging_waits > 0);
    REQUIRE(test::run_workload(*session, 1).value() == expected);
  }
}
