// The session under memory pressure: trim and live budgets from any thread, headroom mode beside a
// renderer that allocates in bursts, the host's own out-of-memory recovered with make_room, and
// device allocations that fail recovered by evicting and retrying. Every path must leave the
// outputs bit for bit equal to an undisturbed run. The CPU device plays the GPU: its memory is a
// SimulatedDevice shared with the "other programs" the tests play.
#include <catch2/catch.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "backend/cuda/cuda_probe.hpp"
#include "dmem/session.hpp"
#include "dmem/simulated_device.hpp"
#include "runtime/fault_injection.hpp"
#include "support/runtime_fixture.hpp"
#include "support/test_support.hpp"

#if DMEM_TEST_HAVE_CUDART
#include <cuda_runtime.h>
#endif

using namespace dmem;
using dmem::test::TempDir;

namespace {

Placement placement(PlacementKind kind, std::uint32_t prefetch = 1) {
  Placement p;
  p.kind = kind;
  p.prefetch = prefetch;
  return p;
}

std::uint64_t resident_checksum(const Model& model, std::uint32_t steps) {
  auto session = Session::open(model, test::one_component(placement(PlacementKind::resident)));
  REQUIRE(session.has_value());
  auto sum = test::run_workload(*session, steps);
  REQUIRE(sum.has_value());
  return *sum;
}

// The largest group that moves: what synchronous streaming holds at its peak.
std::uint64_t largest_group(const Model& model) {
  Placement sync = placement(PlacementKind::group_offload);
  sync.use_stream = false;
  auto probe = Session::open(model, test::one_component(sync));
  REQUIRE(probe.has_value());
  REQUIRE(test::run_workload(*probe, 1).has_value());
  return probe->stats().device.peak;
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

struct Disarm {
  ~Disarm() { detail::fault_reset(); }
};

}  // namespace

TEST_CASE("trim unmaps idle weights at once and says what acquired handles and the plan hold",
          "[runtime][pressure]") {
  TempDir dir;
  const Model model = test::make_block_model(dir.file("m.safetensors"), 6, 64);
  const std::uint64_t expected = resident_checksum(model, 2);
  auto device = std::make_shared<SimulatedDevice>(1ull << 30);
  SessionOptions options;
  options.simulated_device = device;
  std::vector<PressureEvent> events;
  options.on_pressure = [&](const PressureEvent& e) { events.push_back(e); };
  auto session =
      Session::open(model, test::one_component(placement(PlacementKind::model_offload)), options);
  REQUIRE(session.has_value());
  REQUIRE(session->stats().device.in_use == 0);
  {
    auto all = session->acquire("transformer", "");
    REQUIRE(all.has_value());
    const std::uint64_t in_use = session->stats().device.in_use;
    REQUIRE(in_use > 0);
    CHECK(device->used() == in_use);
    // Everything is acquired: nothing can go, and the report says why.
    const TrimReport held = session->trim(in_use);
    CHECK(held.freed == 0);
    CHECK(held.held_by_handles == in_use);
    CHECK_FALSE(held.complete());
    CHECK(held.reason.find("held by acquired modules") != std::string::npos);
    CHECK(session->stats().device.in_use == in_use);
  }
  // Released but kept by model offload: idle, so trim frees it, a little at a time or all.
  const std::uint64_t idle = session->stats().device.in_use;
  const TrimReport some = session->trim(1);
  CHECK(some.complete());
  CHECK(some.freed >= 1);
  CHECK(some.in_use == idle - some.freed);
  CHECK(device->used() == some.in_use);  // unmapped before trim returned
  const TrimReport rest = session->trim(Session::kAll);
  CHECK(rest.complete());
  CHECK(rest.freed + some.freed == idle);
  CHECK(rest.in_use == 0);
  CHECK(device->used() == 0);
  CHECK(session->stats().trimmed_bytes == idle);
  CHECK(session->stats().copies_to_host == 0);
  REQUIRE(events.size() == 3);
  CHECK(events[0].kind == PressureKind::trim);
  CHECK_FALSE(events[0].resolved);
  CHECK(events[2].freed == rest.freed);
  // The session goes on as before: trimmed weights come back from their home.
  auto sum = test::run_workload(*session, 2);
  REQUIRE(sum.has_value());
  CHECK(*sum == expected);

  // Resident weights have no other home: trim leaves them and says so.
  auto resident =
      Session::open(model, test::one_component(placement(PlacementKind::resident)), options);
  REQUIRE(resident.has_value());
  const TrimReport kept = resident->trim(1000);
  CHECK(kept.freed == 0);
  CHECK(kept.kept_by_plan == resident->stats().device.in_use);
  CHECK(kept.reason.find("kept on the device by the plan") != std::string::npos);
}

TEST_CASE(
    "set_budget lowers the device store before returning and raising it lets prefetch "
    "resume",
    "[runtime][pressure]") {
  TempDir dir;
  const Model model = test::make_block_model(dir.file("m.safetensors"), 8, 64);
  const std::uint64_t expected = resident_checksum(model, 2);
  const std::uint64_t largest = largest_group(model);
  auto session =
      Session::open(model, test::one_component(placement(PlacementKind::group_offload, 2)));
  REQUIRE(session.has_value());
  REQUIRE(test::run_workload(*session, 1).has_value());
  const auto units = session->modules("transformer");

  // A budget of one group: no room to prefetch, every acquire loads its own weights.
  auto cut = session->set_budget(StoreKind::device, largest);
  REQUIRE(cut.has_value());
  CHECK(cut->complete());
  CHECK(session->stats().device.in_use <= largest);
  CHECK(session->stats().device.budget == largest);
  std::uint64_t worst = 0;
  test::WorkloadHooks watch;  // the store's use while every layer runs
  watch.allocate = [&](std::uint64_t) {
    worst = std::max(worst, session->stats().device.in_use);
    return Status::ok();
  };
  auto sum = test::run_workload(*session, 2, 5, "transformer", &watch);
  REQUIRE(sum.has_value());
  CHECK(*sum == expected);
  CHECK(worst > 0);
  CHECK(worst <= largest);

  // A cut below what a handle holds keeps the handle's weights and reports them.
  {
    auto held = session->acquire("transformer", units[1]);
    REQUIRE(held.has_value());
    auto below = session->set_budget(StoreKind::device, 1);
    REQUIRE(below.has_value());
    CHECK_FALSE(below->complete());
    CHECK(below->held_by_handles > 0);
    auto refused = session->acquire("transformer", units[2]);
    REQUIRE_FALSE(refused.has_value());
    CHECK(refused.status().rule() == "runtime.budget.device");
  }

  // Raised again: the next acquires prefetch (deterministically: wait for the copy to land).
  auto raised = session->set_budget(StoreKind::device, 4 * largest);
  REQUIRE(raised.has_value());
  CHECK(raised->complete());
  const std::uint64_t copies =
      session->stats().copies_to_device;  // the acquire's and the prefetch's
  {
    auto first = session->acquire("transformer", units[1]);
    REQUIRE(first.has_value());
  }
  for (int i = 0; i < 5000 && session->stats().copies_to_device < copies + 2; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  const std::uint64_t before = session->stats().prefetch_hits;
  {
    auto second = session->acquire("transformer", units[2]);
    REQUIRE(second.has_value());
  }
  CHECK(session->stats().prefetch_hits == before + 1);
  sum = test::run_workload(*session, 2);
  REQUIRE(sum.has_value());
  CHECK(*sum == expected);

  // Stores whose homes are filled at open cannot shrink below them; the disk has no budget.
  const std::uint64_t parked = session->stats().pinned.in_use;
  REQUIRE(parked > 0);
  auto pinned = session->set_budget(StoreKind::pinned, parked / 2);
  REQUIRE_FALSE(pinned.has_value());
  CHECK(pinned.status().rule() == "runtime.budget.pinned");
  CHECK(session->set_budget(StoreKind::pinned, parked).has_value());
  auto disk = session->set_budget(StoreKind::disk, 1);
  REQUIRE_FALSE(disk.has_value());
  CHECK(disk.status().rule() == "runtime.budget.disk");
}

TEST_CASE("trim and set_budget from another thread during acquire",
          "[runtime][pressure][threads]") {
  TempDir dir;
  const Model model = test::make_block_model(dir.file("m.safetensors"), 8, 64);
  const std::uint64_t expected = resident_checksum(model, 1);
  const std::uint64_t largest = largest_group(model);
  auto session =
      Session::open(model, test::one_component(placement(PlacementKind::group_offload, 2)));
  REQUIRE(session.has_value());
  std::atomic<bool> done{false};
  std::atomic<std::uint64_t> calls{0};
  std::atomic<int> inconsistent{-1};  // the first case that broke its promise
  std::thread pressure([&] {
    std::uint32_t i = 0;
    while (!done.load()) {
      switch (i++ % 4) {
        case 0: {
          const TrimReport r = session->trim(Session::kAll);
          // Whatever stays is held by the acquire in progress (and nothing else).
          if (!r.complete() || r.kept_by_plan != 0) inconsistent = 0;
          break;
        }
        case 1: {
          auto r = session->set_budget(StoreKind::device, 2 * largest);
          if (!r.has_value() || r->in_use > 2 * largest) inconsistent = 1;
          break;
        }
        case 2: {
          // Complete: what stays is at most what the budget allows less the room made.
          const TrimReport r = session->make_room(largest);
          if (r.complete() && r.in_use + largest > 2 * largest && r.in_use != 0) inconsistent = 2;
          break;
        }
        default:
          if (!session->set_budget(StoreKind::device, 0).has_value()) inconsistent = 3;
          break;
      }
      calls += 1;
      std::this_thread::yield();
    }
  });
  std::uint32_t steps = 0;
  const auto t0 = std::chrono::steady_clock::now();
  // At least 6 steps, and until the other thread has run a while.
  while (steps < 6 || (calls.load() < 200 && seconds_since(t0) < 20)) {
    auto sum = test::run_workload(*session, 1);
    REQUIRE(sum.has_value());
    CHECK(*sum == expected);
    ++steps;
  }
  done = true;
  pressure.join();
  CHECK(inconsistent.load() == -1);
  CHECK(calls.load() > 0);
  CHECK(session->stats().copies_to_host == 0);
  const TrimReport last = session->trim(Session::kAll);
  CHECK(last.in_use == 0);
}

TEST_CASE("headroom mode follows another program's use at acquire boundaries",
          "[runtime][pressure]") {
  TempDir dir;
  const Model model = test::make_block_model(dir.file("m.safetensors"), 6, 64);
  const std::uint64_t expected = resident_checksum(model, 1);
  // Sizes of the component: model offload holds all of it after the first acquire.
  std::uint64_t component = 0;
  {
    auto probe = Session::open(model, test::one_component(placement(PlacementKind::model_offload)));
    REQUIRE(probe.has_value());
    REQUIRE(test::run_workload(*probe, 1).has_value());
    component = probe->stats().device.in_use;
  }
  REQUIRE(component > 0);
  const std::uint64_t headroom = component / 2;
  auto device = std::make_shared<SimulatedDevice>(2 * component + headroom);
  std::atomic<std::uint32_t> probes{0};
  SessionOptions options;
  options.simulated_device = device;
  options.headroom = headroom;
  options.headroom_interval_ms = 0;  // acquire boundaries only: deterministic
  options.memory_probe = [&] {
    probes += 1;
    return device->info();
  };
  auto session =
      Session::open(model, test::one_component(placement(PlacementKind::model_offload)), options);
  REQUIRE(session.has_value());
  REQUIRE(test::run_workload(*session, 1).has_value());
  CHECK(probes.load() > 0);
  CHECK(session->stats().headroom_limit == device->total() - headroom);
  CHECK(session->stats().device.in_use == component);  // model offload keeps it
  CHECK(session->stats().headroom_shrinks == 0);

  // Another program takes 1.5 components: only half a component is free, less than the
  // headroom. At the next acquire the idle component goes; the acquire itself needs it back, so
  // it loads past the headroom (counted) rather than fail.
  REQUIRE(device->take(component + component / 2));
  auto sum = test::run_workload(*session, 1);
  REQUIRE(sum.has_value());
  CHECK(*sum == expected);
  SessionStats s = session->stats();
  CHECK(s.headroom_shrinks >= 1);
  CHECK(s.headroom_overruns >= 1);
  CHECK(s.headroom_limit < component);
  CHECK(device->peak() <= device->total());

  // The other program leaves: the limit grows back and loads stay within it.
  device->give(component + component / 2);
  const std::uint64_t overruns = s.headroom_overruns;
  sum = test::run_workload(*session, 1);
  REQUIRE(sum.has_value());
  CHECK(*sum == expected);
  s = session->stats();
  CHECK(s.headroom_limit == device->total() - headroom);
  CHECK(s.headroom_overruns == overruns);
  CHECK(s.device.in_use == component);
}

TEST_CASE("headroom mode gives memory back to a renderer allocating in bursts during a run",
          "[runtime][pressure][threads]") {
  TempDir dir;
  const Model model = test::make_block_model(dir.file("m.safetensors"), 8, 64);
  const std::uint64_t expected = resident_checksum(model, 1);
  const std::uint64_t group = largest_group(model);
  // dmem wants one group in use and three prefetched; the renderer's bursts take the headroom.
  const std::uint64_t headroom = 2 * group;
  const std::uint64_t burst = headroom;
  auto device = std::make_shared<SimulatedDevice>(4 * group + headroom);
  const auto origin = std::chrono::steady_clock::now();
  const auto now_ns = [&] {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() -
                                                                origin)
        .count();
  };
  SessionOptions options;
  options.simulated_device = device;
  options.headroom = headroom;
  options.headroom_interval_ms = 2;
  auto session = Session::open(
      model, test::one_component(placement(PlacementKind::group_offload, 3)), options);
  REQUIRE(session.has_value());

  std::atomic<bool> renderer_done{false};
  std::atomic<std::uint32_t> renderer_failures{0};
  std::vector<double> latencies;  // seconds from the renderer's allocation to dmem's eviction
  std::uint32_t bursts_needing_room = 0;
  std::thread renderer([&] {
    for (int b = 0; b < 25; ++b) {
      // Burst while dmem holds more than two groups (free below four), so that the burst eats
      // into the headroom however slowly the run goes (TSan): up to a second's wait.
      const auto wait0 = std::chrono::steady_clock::now();
      while (device->info().free >= 4 * group && seconds_since(wait0) < 1)
        std::this_thread::sleep_for(std::chrono::microseconds(100));
      const std::int64_t taken_at = now_ns();
      // The host's activation buffers (not under headroom) can briefly leave less than the
      // headroom free: a renderer waits a frame or so for it, then counts a failure.
      bool taken = device->take(burst);
      for (int retry = 0; !taken && retry < 50; ++retry) {
        std::this_thread::sleep_for(std::chrono::milliseconds(2));
        taken = device->take(burst);
      }
      if (!taken) {
        renderer_failures += 1;  // the headroom was not there for it
        std::this_thread::sleep_for(std::chrono::milliseconds(2));
        continue;
      }
      // Did the burst eat into the headroom? Then dmem must give memory back: the latency is
      // until the device has the headroom free again.
      if (device->info().free < headroom) {
        bursts_needing_room += 1;
        const auto t0 = std::chrono::steady_clock::now();
        while (device->info().free < headroom && seconds_since(t0) < 5)
          std::this_thread::sleep_for(std::chrono::microseconds(50));
        if (device->info().free >= headroom)
          latencies.push_back(static_cast<double>(now_ns() - taken_at) * 1e-9);
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(3));  // the frame
      device->give(burst);
      std::this_thread::sleep_for(std::chrono::milliseconds(3));
    }
    renderer_done = true;
  });
  std::uint32_t steps = 0;
  while (!renderer_done.load() || steps < 3) {
    auto sum = test::run_workload(*session, 1);
    REQUIRE(sum.has_value());
    CHECK(*sum == expected);
    ++steps;
  }
  renderer.join();
  const SessionStats s = session->stats();
  CHECK(renderer_failures.load() == 0);
  CHECK(device->peak() <= device->total());
  CHECK(s.alloc_failures == 0);
  CHECK(s.copies_to_host == 0);
  // Memory comes back by headroom evictions or by streaming dropping groups after use, as the
  // timing falls: the deterministic count of shrinks is the acquire-boundary test's.
  REQUIRE(bursts_needing_room > 0);
  REQUIRE(latencies.size() == bursts_needing_room);
  std::sort(latencies.begin(), latencies.end());
  std::printf(
      "headroom: %zu bursts gave memory back, latency median %.2f ms, max %.2f ms (timer 2 ms); "
      "%u steps, %llu shrinks, %llu overruns\n",
      latencies.size(), latencies[latencies.size() / 2] * 1e3, latencies.back() * 1e3, steps,
      static_cast<unsigned long long>(s.headroom_shrinks),
      static_cast<unsigned long long>(s.headroom_overruns));

  // The renderer has left: the limit grows back to everything but the headroom.
  const auto t0 = std::chrono::steady_clock::now();
  while (session->stats().headroom_limit < device->total() - headroom && seconds_since(t0) < 5)
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  CHECK(session->stats().headroom_limit >= device->total() - headroom);
}

TEST_CASE("the host's activation out-of-memory is recovered with make_room, bit for bit",
          "[runtime][pressure]") {
  TempDir dir;
  const Model model = test::make_block_model(dir.file("m.safetensors"), 8, 64);
  const std::uint64_t expected = resident_checksum(model, 2);
  const std::uint64_t group = largest_group(model);
  // Dropped placement: blocks are read on first use and stay until evicted, so the device (three
  // and a half blocks) fills with idle weights; the host's activations (half a block per layer
  // here) then do not fit, and neither does dmem's next block.
  const std::uint64_t activations = group / 2;
  auto device = std::make_shared<SimulatedDevice>(3 * group + activations);
  SessionOptions options;
  options.simulated_device = device;
  auto session =
      Session::open(model, test::one_component(placement(PlacementKind::dropped)), options);
  REQUIRE(session.has_value());
  std::uint32_t failures = 0, recovered = 0;
  test::WorkloadHooks hooks;
  hooks.allocate = [&](std::uint64_t) -> Status {
    if (device->take(activations)) return Status::ok();
    failures += 1;
    const TrimReport room = session->make_room(activations);
    if (!room.complete() || room.freed < activations)
      return Status(Errc::out_of_memory, "make_room: " + room.reason);
    if (!device->take(activations)) return Status(Errc::out_of_memory, "retry failed");
    recovered += 1;
    return Status::ok();
  };
  hooks.release = [&](std::uint64_t) { device->give(activations); };
  auto sum = test::run_workload(*session, 2, 5, "transformer", &hooks);
  REQUIRE(sum.has_value());
  CHECK(*sum == expected);
  CHECK(failures > 0);
  CHECK(recovered == failures);
  const SessionStats s = session->stats();
  // dmem's own loads met the idle weights too: evicted and retried, never failed.
  CHECK(s.alloc_retries > 0);
  CHECK(s.alloc_failures == 0);
  CHECK(device->peak() <= device->total());
  session->finish("transformer");
  CHECK(device->used() == 0);
}

TEST_CASE("an injected device allocation failure is evicted around and retried, or fails cleanly",
          "[runtime][pressure][faults]") {
  TempDir dir;
  const Model model = test::make_block_model(dir.file("m.safetensors"), 4, 32);
  const std::uint64_t expected = resident_checksum(model, 2);
  Disarm disarm;
  auto device = std::make_shared<SimulatedDevice>(1ull << 30);
  std::vector<PressureEvent> events;
  SessionOptions options;
  options.simulated_device = device;
  options.on_pressure = [&](const PressureEvent& e) { events.push_back(e); };
  for (PlacementKind kind : {PlacementKind::dropped, PlacementKind::model_offload}) {
    INFO("placement " << static_cast<int>(kind));
    // Count the device allocations of an undisturbed run.
    std::uint64_t calls = 0;
    {
      auto session = Session::open(model, test::one_component(placement(kind)), options);
      REQUIRE(session.has_value());
      detail::fault_arm(detail::FaultSite::device_alloc, 0);
      REQUIRE(test::run_workload(*session, 2).has_value());
      calls = detail::fault_calls(detail::FaultSite::device_alloc);
      detail::fault_reset();
    }
    REQUIRE(calls > 0);
    std::uint32_t retried = 0, failed = 0;
    for (std::uint64_t n = 1; n <= calls; ++n) {
      INFO("failing device allocation " << n);
      events.clear();
      auto session = Session::open(model, test::one_component(placement(kind)), options);
      REQUIRE(session.has_value());
      detail::fault_arm(detail::FaultSite::device_alloc, n);
      auto sum = test::run_workload(*session, 2);
      detail::fault_reset();
      if (sum.has_value()) {
        // Recovered by evicting an idle group and retrying.
        CHECK(*sum == expected);
        CHECK(session->stats().alloc_retries == 1);
        REQUIRE(events.size() == 1);
        CHECK(events[0].kind == PressureKind::allocation);
        CHECK(events[0].resolved);
        CHECK(events[0].freed > 0);
        ++retried;
      } else {
        // Nothing idle to evict: a clean Status, and the session still works.
        CHECK(sum.status().code() == Errc::out_of_memory);
        CHECK_FALSE(sum.status().hint().empty());
        CHECK(session->stats().alloc_failures == 1);
        auto again = test::run_workload(*session, 2);
        REQUIRE(again.has_value());
        CHECK(*again == expected);
        ++failed;
      }
      session->finish("transformer");
      CHECK(session->stats().device.in_use == 0);
    }
    CHECK(device->used() == 0);  // nothing leaked
    if (kind == PlacementKind::dropped) CHECK(retried > 0);
    CHECK(retried + failed == calls);
  }
}

#if DMEM_TEST_HAVE_CUDART
TEST_CASE(
    "trim returns device memory to the driver, seen by cudaMemGetInfo here and in another process",
    "[cuda]") {
  if (!detail::cuda_compiled() || detail::cuda_devices().empty()) {
    std::printf("DMEM_SKIP: no CUDA device\n");
    return;
  }
  TempDir dir;
  // About 120 MiB of weights in 8 blocks of width 1024.
  const Model model = test::make_block_model(dir.file("m.safetensors"), 8, 1024);
  SessionOptions options;
  options.device = DeviceKind::cuda;
  auto session =
      Session::open(model, test::one_component(placement(PlacementKind::model_offload)), options);
  REQUIRE(session.has_value());
  {
    auto all = session->acquire("transformer", "");
    REQUIRE(all.has_value());
  }
  // Free memory as another process sees it: `dmem hardware --json` queries the driver itself.
  const auto free_elsewhere = []() -> std::uint64_t {
    std::string out;
    if (test::run_command(test::cli_path() + " hardware --json", &out, false) != 0) return 0;
    const auto j = nlohmann::json::parse(out, nullptr, false);
    if (j.is_discarded() || !j.contains("gpus") || j["gpus"].empty()) return 0;
    return j["gpus"][0].value("vram_free_bytes", std::uint64_t{0});
  };
  std::size_t free_loaded = 0, free_trimmed = 0, total = 0;
  REQUIRE(cudaMemGetInfo(&free_loaded, &total) == cudaSuccess);
  const std::uint64_t other_loaded = free_elsewhere();
  const std::uint64_t weights = session->stats().device.in_use;
  const TrimReport report = session->trim(Session::kAll);
  REQUIRE(cudaMemGetInfo(&free_trimmed, &total) == cudaSuccess);
  const std::uint64_t other_trimmed = free_elsewhere();
  std::printf("another process saw free %.1f -> %.1f MiB\n",
              static_cast<double>(other_loaded) / 1048576.0,
              static_cast<double>(other_trimmed) / 1048576.0);
  REQUIRE(other_loaded > 0);
  CHECK(other_trimmed >= other_loaded + weights * 9 / 10);
  std::printf("trim: %.1f MiB of weights, free %.1f -> %.1f MiB in %.3f ms\n",
              static_cast<double>(weights) / 1048576.0,
              static_cast<double>(free_loaded) / 1048576.0,
              static_cast<double>(free_trimmed) / 1048576.0, report.seconds * 1e3);
  CHECK(report.freed == weights);
  CHECK(free_trimmed - free_loaded >= weights * 9 / 10);
  // Headroom mode reads the same query.
  CHECK(session->stats().device.in_use == 0);
}
#endif
