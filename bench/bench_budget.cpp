// Giving memory back, as ratios to peers measured in the same run:
//  * time from a device budget cut (Session::set_budget) to the memory being returned, per
//    placement, against a plain munmap of the same bytes (CPU device) — the floor any eviction
//    that really returns memory has to pay;
//  * headroom mode's latency from "another program allocated" to "the headroom is free again",
//    idle (the timer alone sees it) and during a run (acquire boundaries see it too), against
//    the timer interval (CPU device with a simulated device).
//
//   bench_budget [--mib N] [--device cpu|cuda] [--json FILE]   (checkpoint of about N MiB)
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "bench_report.hpp"
#include "dmem/session.hpp"
#include "dmem/simulated_device.hpp"
#include "support/runtime_fixture.hpp"

namespace {

double now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// munmap of `bytes` of touched anonymous memory: what returning it to the system costs at least.
double plain_unmap_seconds(std::uint64_t bytes) {
  void* p = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) return 0;
  std::memset(p, 1, bytes);
  const double t0 = now();
  ::munmap(p, bytes);
  return now() - t0;
}

dmem::Placement placement(dmem::PlacementKind kind, std::uint32_t prefetch = 1) {
  dmem::Placement p;
  p.kind = kind;
  p.prefetch = prefetch;
  return p;
}

double median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  const std::string json = dmem::bench::take_json_flag(argc, argv);
  dmem::bench::Report report("bench_budget");
  std::uint64_t mib = 128;
  dmem::DeviceKind device = dmem::DeviceKind::cpu;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--mib" && i + 1 < argc) {
      mib = static_cast<std::uint64_t>(std::max(8, std::atoi(argv[++i])));
    } else if (a == "--device" && i + 1 < argc) {
      const std::string d = argv[++i];
      device = d == "cuda" ? dmem::DeviceKind::cuda : dmem::DeviceKind::cpu;
    } else {
      std::fprintf(stderr, "usage: bench_budget [--mib N] [--device cpu|cuda] [--json FILE]\n");
      return 2;
    }
  }
  const char* tmp = std::getenv("TMPDIR");
  const std::filesystem::path dir =
      std::filesystem::path(tmp != nullptr && *tmp != '\0' ? tmp : "/tmp") /
      ("dmem-bench-budget-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  const std::string path = (dir / "m.safetensors").string();
  // Blocks of width 1024 hold about 15 MiB each.
  const auto blocks = static_cast<std::uint32_t>(std::max<std::uint64_t>(4, mib / 15));
  const dmem::Model model = dmem::test::make_block_model(path, blocks, 1024);
  std::printf("checkpoint: %u blocks of about 15 MiB, device %s\n", blocks,
              device == dmem::DeviceKind::cuda ? "cuda" : "cpu");

  // ---- budget cut to memory returned, per placement ----------------------------------------
  struct Case {
    const char* name;
    dmem::Placement placement;
  };
  dmem::Placement partial = placement(dmem::PlacementKind::partial, 3);
  partial.resident_blocks = blocks / 2;
  const Case cases[] = {
      {"model offload", placement(dmem::PlacementKind::model_offload)},
      {"dropped", placement(dmem::PlacementKind::dropped)},
      {"group offload prefetch 3", placement(dmem::PlacementKind::group_offload, 3)},
      {"partial half prefetch 3", partial},
      {"disk prefetch 3", placement(dmem::PlacementKind::disk, 3)}};
  std::printf("\n%-26s %10s %10s %10s %12s\n", "budget cut", "freed MiB", "ms", "GB/s",
              "vs munmap");
  for (const Case& c : cases) {
    dmem::SessionOptions options;
    options.device = device;
    options.cache_dir = dir.string();
    auto session = dmem::Session::open(model, dmem::test::one_component(c.placement), options);
    if (!session) {
      std::fprintf(stderr, "%s\n", session.status().to_string().c_str());
      return 1;
    }
    // Fill the device with what the placement keeps after a step (and prefetches for the next).
    if (!dmem::test::run_workload(*session, 1, 16)) return 1;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));  // prefetches land
    const std::uint64_t before = session->stats().device.in_use;
    const double t0 = now();
    auto cut = session->set_budget(dmem::StoreKind::device, 1);
    const double seconds = now() - t0;
    if (!cut) {
      std::fprintf(stderr, "%s\n", cut.status().to_string().c_str());
      return 1;
    }
    const double freed_mib = static_cast<double>(cut->freed) / 1048576.0;
    if (cut->freed == 0) {
      std::printf("%-26s %10.1f %10s %10s %12s  (kept %.1f MiB: %s)\n", c.name, freed_mib, "-", "-",
                  "-", static_cast<double>(before) / 1048576.0,
                  cut->reason.empty() ? "nothing idle" : cut->reason.c_str());
      continue;
    }
    double peer = 1e30;
    if (device == dmem::DeviceKind::cpu)
      for (int i = 0; i < 3; ++i) peer = std::min(peer, plain_unmap_seconds(cut->freed));
    const double gbs = static_cast<double>(cut->freed) / seconds / 1e9;
    if (device == dmem::DeviceKind::cpu) {
      std::printf("%-26s %10.1f %10.3f %10.2f %11.2fx\n", c.name, freed_mib, seconds * 1e3, gbs,
                  seconds / peer);
      report.ratio(std::string("cut ") + c.name + " vs munmap", seconds / peer);
    } else {
      std::printf("%-26s %10.1f %10.3f %10.2f %12s\n", c.name, freed_mib, seconds * 1e3, gbs, "-");
    }
    report.result(std::string("cut ms ") + c.name, seconds * 1e3);
    report.result(std::string("cut freed MiB ") + c.name, freed_mib);
  }

  // ---- headroom: another program allocates, dmem gives it back -----------------------------
  // The CPU device on a simulated device of four groups plus the headroom, under group offload
  // with three groups prefetched. A burst takes all but half the headroom, so dmem must evict
  // idle (prefetched) groups until the headroom is free again. On CUDA the device's own
  // cudaMemGetInfo is read and a burst would need another process: CPU device only.
  std::uint64_t group = 0;
  {
    dmem::Placement sync = placement(dmem::PlacementKind::group_offload);
    sync.use_stream = false;
    auto probe = dmem::Session::open(model, dmem::test::one_component(sync));
    if (!probe || !dmem::test::run_workload(*probe, 1, 16)) return 1;
    group = probe->stats().device.peak;
  }
  const std::uint64_t headroom = group;
  std::printf("\n%-28s %8s %10s %10s %10s\n", "headroom (one group)", "bursts", "median ms",
              "max ms", "vs timer");
  for (const bool running : {false, true}) {
    for (const std::uint32_t interval : {1u, 5u, 20u}) {
      auto simulated = std::make_shared<dmem::SimulatedDevice>(4 * group + headroom);
      dmem::SessionOptions options;
      options.simulated_device = simulated;
      options.headroom = headroom;
      options.headroom_interval_ms = interval;
      auto session = dmem::Session::open(
          model, dmem::test::one_component(placement(dmem::PlacementKind::group_offload, 3)),
          options);
      if (!session || !dmem::test::run_workload(*session, 1, 16)) return 1;
      std::atomic<bool> stop{false};
      std::thread host;
      if (running) {
        host = std::thread([&] {
          while (!stop.load()) (void)dmem::test::run_workload(*session, 1, 16);
        });
      }
      std::vector<double> latencies;
      for (int b = 0; b < 15; ++b) {
        // Idle: a step leaves the next step's first groups prefetched (dmem at three groups).
        if (!running && !dmem::test::run_workload(*session, 1, 16)) return 1;
        std::this_thread::sleep_for(std::chrono::milliseconds(30));
        const std::uint64_t free = simulated->info().free;
        if (free <= headroom / 2) continue;
        const std::uint64_t burst = free - headroom / 2;
        const double t0 = now();
        if (!simulated->take(burst)) continue;
        while (simulated->info().free < headroom && now() - t0 < 2)
          std::this_thread::sleep_for(std::chrono::microseconds(20));
        if (simulated->info().free >= headroom) latencies.push_back(now() - t0);
        simulated->give(burst);
      }
      stop = true;
      if (host.joinable()) host.join();
      const double med = median(latencies);
      const double worst =
          latencies.empty() ? 0 : *std::max_element(latencies.begin(), latencies.end());
      char name[64];
      std::snprintf(name, sizeof name, "%s, timer %u ms", running ? "running" : "idle", interval);
      std::printf("%-28s %8zu %10.3f %10.3f %9.2fx\n", name, latencies.size(), med * 1e3,
                  worst * 1e3, med * 1e3 / interval);
      report.result(std::string("headroom median ms ") + name, med * 1e3);
      report.result(std::string("headroom max ms ") + name, worst * 1e3);
      report.ratio(std::string("headroom ") + name + " vs timer", med * 1e3 / interval);
    }
  }
  std::error_code ec;
  std::filesystem::remove_all(dir, ec);
  return report.write(json) ? 0 : 1;
}
