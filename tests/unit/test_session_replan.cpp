// Re-planning: a device budget cut below what the plan needs moves the session to another plan
// that fits (between acquires), the host hears of it, and the outputs stay those of the resident
// run bit for bit. Failures anywhere in the switch leave the session usable at its old plan.
#include <catch2/catch.hpp>

#include <algorithm>
#include <atomic>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "dmem/hardware.hpp"
#include "dmem/plan.hpp"
#include "dmem/session.hpp"
#include "dmem/simulated_device.hpp"
#include "runtime/fault_injection.hpp"
#include "support/runtime_fixture.hpp"
#include "support/test_support.hpp"

using namespace dmem;
using dmem::test::TempDir;

namespace {

struct Disarm {
  ~Disarm() { detail::fault_reset(); }
};

Model denoiser_model(const TempDir& dir, std::uint32_t blocks = 8) {
  Model m = test::make_block_model(dir.file("m.safetensors"), blocks, 64);
  m.components.at(0).role = Role::denoiser;
  return m;
}

// The machine the plan was made for: a GPU with room for everything, plenty of RAM.
ReplanOptions replan_options() {
  ReplanOptions ro;
  GpuSpec gpu;
  for (const GpuPreset& p : gpu_presets())
    if (p.id == "rtx4090") gpu = p.spec;
  ro.hardware.gpus.push_back(gpu);
  ro.hardware.ram_total = 64ull << 30;
  ro.hardware.ram_available = 64ull << 30;
  ro.hardware.disk_free = 1ull << 40;
  ro.hardware.cpu_cores = 2;
  ro.workload.steps = 4;
  ro.workload.activation_gib = 0.0;
  ro.plan.margin = 0.0;  // the device limit is exact: the runtime checks each plan's need
  return ro;
}

Strategy resident() {
  Placement p;
  p.kind = PlacementKind::resident;
  return test::one_component(p);
}

std::uint64_t checksum(const Model& model, std::uint32_t steps) {
  auto session = Session::open(model, resident());
  REQUIRE(session.has_value());
  auto sum = test::run_workload(*session, steps);
  REQUIRE(sum.has_value());
  return *sum;
}

}  // namespace

TEST_CASE("a device budget cut below the plan's need moves the session to another plan",
          "[runtime][pressure][replan]") {
  TempDir dir;
  const Model model = denoiser_model(dir);
  const std::uint64_t expected = checksum(model, 1);
  SessionOptions options;
  options.replan = replan_options();
  std::vector<std::string> events;
  std::uint64_t read_again = 0;
  options.on_replan = [&](const ReplanEvent& e) {
    REQUIRE(e.old_plan != nullptr);
    REQUIRE(e.new_plan != nullptr);
    events.push_back(strategy_summary(*e.old_plan) + " -> " + strategy_summary(*e.new_plan) + ": " +
                     std::string(e.reason));
    read_again += e.bytes_read;
  };
  auto session = Session::open(model, resident(), options);
  REQUIRE(session.has_value());
  REQUIRE(test::run_workload(*session, 1).value() == expected);
  const std::uint64_t all = session->stats().device.in_use;

  // Half of the weights: resident no longer fits, and evicting cannot help (nothing is idle).
  auto cut = session->set_budget(StoreKind::device, all / 2);
  REQUIRE(cut.has_value());
  INFO(cut->reason);
  CHECK(cut->replanned);
  CHECK(cut->complete());
  CHECK(session->stats().replans == 1);
  REQUIRE(events.size() == 1);
  INFO(events.front());
  CHECK(events.front().find("budget was cut") != std::string::npos);
  const Strategy now = session->strategy();
  REQUIRE(now.components.size() == 1);
  CHECK(now.components[0].placement.kind != PlacementKind::resident);
  // Every weight was on the device or stays there: none is read from the checkpoint again.
  CHECK(read_again == 0);
  CHECK(session->stats().device.in_use <= all / 2);

  // The run goes on under the cut budget, bit for bit.
  for (int step = 0; step < 3; ++step) REQUIRE(test::run_workload(*session, 1).value() == expected);
  CHECK(session->stats().device.peak <= all);
  CHECK(session->stats().copies_to_host == 0);

  // A second, deeper cut moves it again; raising the budget later needs no re-plan.
  auto deeper = session->set_budget(StoreKind::device, all / 4);
  REQUIRE(deeper.has_value());
  if (deeper->replanned) CHECK(session->stats().replans == 2);
  REQUIRE(test::run_workload(*session, 2).value() == checksum(model, 2));
  REQUIRE(session->set_budget(StoreKind::device, 0).has_value());
  REQUIRE(test::run_workload(*session, 1).value() == expected);
}

TEST_CASE("a cut made while a handle is held re-plans at the next acquire",
          "[runtime][pressure][replan]") {
  TempDir dir;
  const Model model = denoiser_model(dir);
  const std::uint64_t expected = checksum(model, 2);
  SessionOptions options;
  options.replan = replan_options();
  auto session = Session::open(model, resident(), options);
  REQUIRE(session.has_value());
  const std::uint64_t all = session->stats().device.in_use;
  {
    auto held = session->acquire("transformer", "transformer_blocks.0");
    REQUIRE(held.has_value());
    auto cut = session->set_budget(StoreKind::device, all / 2);
    REQUIRE(cut.has_value());
    CHECK(cut->replan_pending);
    CHECK_FALSE(cut->replanned);
    CHECK(session->stats().replans == 0);
    CHECK(session->strategy().components[0].placement.kind == PlacementKind::resident);
  }
  REQUIRE(test::run_workload(*session, 2).value() == expected);
  CHECK(session->stats().replans == 1);
  CHECK(session->stats().device.in_use <= all / 2);
}

TEST_CASE("no plan fits: a clear error naming the closest plan, and the old plan still serves",
          "[runtime][pressure][replan]") {
  TempDir dir;
  const Model model = denoiser_model(dir);
  const std::uint64_t expected = checksum(model, 1);
  SessionOptions options;
  options.replan = replan_options();
  auto session = Session::open(model, resident(), options);
  REQUIRE(session.has_value());
  auto cut = session->set_budget(StoreKind::device, 1024);
  REQUIRE_FALSE(cut.has_value());
  INFO(cut.status().to_string());
  CHECK(cut.status().rule() == "runtime.replan.none");
  CHECK(cut.status().message().find("stays at its plan") != std::string::npos);
  CHECK(cut.status().hint().find("raise the budget") != std::string::npos);
  CHECK(session->stats().replans == 0);
  CHECK(session->stats().replan_failures == 1);
  CHECK(session->strategy().components[0].placement.kind == PlacementKind::resident);
  // Resident weights are still there: the old plan runs once the budget allows it again.
  REQUIRE(session->set_budget(StoreKind::device, 0).has_value());
  REQUIRE(test::run_workload(*session, 1).value() == expected);
}

TEST_CASE("without re-planning a cut below the plan's need stays an eviction report",
          "[runtime][pressure][replan]") {
  TempDir dir;
  const Model model = denoiser_model(dir);
  auto session = Session::open(model, resident());
  REQUIRE(session.has_value());
  const std::uint64_t all = session->stats().device.in_use;
  auto cut = session->set_budget(StoreKind::device, all / 2);
  REQUIRE(cut.has_value());
  CHECK_FALSE(cut->replanned);
  CHECK_FALSE(cut->complete());
  CHECK(cut->kept_by_plan == all);
}

TEST_CASE("an injected failure anywhere in the switch leaves the session usable",
          "[runtime][pressure][replan][faults]") {
  TempDir dir;
  const Model model = denoiser_model(dir, 6);
  const std::uint64_t expected = checksum(model, 1);
  Disarm disarm;
  // Two starting plans: resident (demotes from the device) and partial streaming from the
  // checkpoint (a new host home is filled from the file).
  std::vector<Strategy> starts{resident()};
  {
    Placement p;
    p.kind = PlacementKind::partial;
    p.resident_blocks = 4;
    p.park = Tier::disk;
    starts.push_back(test::one_component(p));
  }
  for (const Strategy& start : starts) {
    for (detail::FaultSite site : {detail::FaultSite::device_alloc, detail::FaultSite::pinned_alloc,
                                   detail::FaultSite::host_alloc, detail::FaultSite::read}) {
      for (std::uint64_t nth = 1; nth <= 8; ++nth) {
        SessionOptions options;
        options.replan = replan_options();
        auto session = Session::open(model, start, options);
        REQUIRE(session.has_value());
        REQUIRE(test::run_workload(*session, 1).value() == expected);
        const std::uint64_t all = session->stats().device.in_use;
        detail::fault_arm(site, nth);
        auto cut = session->set_budget(StoreKind::device, std::max<std::uint64_t>(all / 2, 1));
        detail::fault_reset();
        INFO("site " << static_cast<int>(site) << " call " << nth << ": "
                     << (cut ? std::string("ok") : cut.status().to_string()));
        if (!cut) {
          CHECK(session->stats().replans == 0);
          CHECK(session->strategy().components[0].placement.kind ==
                start.components[0].placement.kind);
        }
        // Usable: the next acquire re-plans (or runs the old plan) and the outputs hold.
        auto sum = test::run_workload(*session, 1);
        INFO((sum ? std::string("ran") : sum.status().to_string()));
        CHECK((sum.has_value() && *sum == expected));
      }
    }
  }
}

TEST_CASE("a budget cut from another thread during a run re-plans between acquires",
          "[runtime][pressure][replan][threads]") {
  TempDir dir;
  const Model model = denoiser_model(dir);
  const std::uint64_t expected = checksum(model, 1);
  SessionOptions options;
  options.replan = replan_options();
  std::atomic<int> replans{0};
  options.on_replan = [&](const ReplanEvent&) { replans.fetch_add(1); };
  auto session = Session::open(model, resident(), options);
  REQUIRE(session.has_value());
  const std::uint64_t all = session->stats().device.in_use;
  std::atomic<int> steps{0};
  std::atomic<bool> cut_done{false};
  std::thread cutter([&] {
    while (steps.load() < 1) std::this_thread::yield();
    auto cut = session->set_budget(StoreKind::device, all / 2);
    CHECK(cut.has_value());
    cut_done.store(true);
  });
  bool all_equal = true;
  // Steps go on until the cut is made, then one more runs under the new plan.
  for (int guard = 0; !cut_done.load() && guard < 100000; ++guard) {
    auto sum = test::run_workload(*session, 1);
    all_equal = all_equal && sum.has_value() && *sum == expected;
    steps.fetch_add(1);
  }
  auto after = test::run_workload(*session, 1);
  all_equal = all_equal && after.has_value() && *after == expected;
  cutter.join();
  CHECK(all_equal);
  CHECK(replans.load() == 1);
  CHECK(session->stats().replans == 1);
  CHECK(session->stats().device.in_use <= all / 2);
}

TEST_CASE("a device allocation that fails with nothing idle left re-plans and the step goes on",
          "[runtime][pressure][replan]") {
  TempDir dir;
  const Model model = denoiser_model(dir);
  const std::uint64_t expected = checksum(model, 1);
  auto device = std::make_shared<SimulatedDevice>(64ull << 20);
  SessionOptions options;
  options.simulated_device = device;
  options.replan = replan_options();
  std::string why;
  options.on_replan = [&](const ReplanEvent& e) { why = std::string(e.reason); };
  Placement p;
  p.kind = PlacementKind::partial;
  p.resident_blocks = 6;  // of 8: the last two stream
  p.use_stream = false;
  auto session = Session::open(model, test::one_component(p), options);
  REQUIRE(session.has_value());
  const std::uint64_t kept = session->stats().device.in_use;
  // Another program takes all but a sliver of the device: a streamed block no longer fits
  // beside the six kept ones, and nothing idle is left to evict.
  const std::uint64_t sliver = kept / 20;
  const std::uint64_t taken = device->info().free - sliver;
  REQUIRE(device->take(taken));
  auto sum = test::run_workload(*session, 1);
  INFO((sum ? std::string("ran") : sum.status().to_string()));
  REQUIRE(sum.has_value());
  CHECK(*sum == expected);
  CHECK(session->stats().replans == 1);
  CHECK(why.find("acquiring") != std::string::npos);
  CHECK(session->strategy().components[0].placement.resident_blocks < 6);
  CHECK(device->used() <= device->total());
  device->give(taken);
}
