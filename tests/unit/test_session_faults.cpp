// Fault injection: the N-th allocation of each store, or the N-th read, fails (or comes back
// short) during load and acquire. Every failure is reported as a Status; the session is usable
// afterwards or was never opened, and nothing leaks (the ASan job runs this).
#include <catch2/catch.hpp>

#include <filesystem>

#include <fstream>
#include <string>

#include "dmem/plugin_registry.hpp"
#include "dmem/session.hpp"
#include "runtime/fault_injection.hpp"
#include "support/runtime_fixture.hpp"
#include "support/test_support.hpp"

using namespace dmem;
using detail::FaultSite;

namespace {

struct Disarm {
  ~Disarm() { detail::fault_reset(); }
};

std::uint64_t peak_rss_bytes() {
  std::ifstream status("/proc/self/status");
  std::string key;
  while (status >> key) {
    if (key == "VmHWM:") {
      std::uint64_t kib = 0;
      status >> kib;
      return kib * 1024;
    }
  }
  return 0;
}

std::uint64_t rss_bytes() {
  std::ifstream status("/proc/self/status");
  std::string key;
  while (status >> key) {
    if (key == "VmRSS:") {
      std::uint64_t kib = 0;
      status >> kib;
      return kib * 1024;
    }
  }
  return 0;
}

}  // namespace

TEST_CASE("every injected failure in load and acquire is a clean Status", "[runtime][faults]") {
  test::TempDir dir;
  const Model model = test::make_block_model(dir.file("m.safetensors"), 4, 32);
  Disarm disarm;
  Storage cast;
  cast.kind = StorageKind::layerwise_cast;
  SessionOptions options;
  options.cache_dir = dir.path().string();
  options.staging_bytes = 1024;  // many chunks, so reads fail mid-tensor too
  PluginRegistry registry;
  REQUIRE(registry.load(DMEM_TEST_PLUGIN_INT8).is_ok());
  options.plugins = &registry;
  Storage int8;
  int8.kind = StorageKind::quantized;
  int8.quantizer = "dmem.quantizer.int8_row_test";
  struct Case {
    const char* name;
    PlacementKind kind;
    Tier park;
    Storage storage;
  };
  const Case cases[] = {{"resident", PlacementKind::resident, Tier::pinned, {}},
                        {"group pinned", PlacementKind::group_offload, Tier::pinned, {}},
                        {"group pageable cast", PlacementKind::group_offload, Tier::pageable, cast},
                        {"disk cast", PlacementKind::disk, Tier::disk, cast},
                        {"disk", PlacementKind::disk, Tier::disk, {}},
                        {"cpu", PlacementKind::cpu, Tier::pinned, {}},
                        {"group quantized", PlacementKind::group_offload, Tier::pinned, int8},
                        {"disk quantized", PlacementKind::disk, Tier::disk, int8}};
  std::uint64_t expected_native = 0;
  std::uint64_t expected_cast = 0;
  std::uint64_t expected_int8 = 0;
  {
    auto q = Session::open(model, test::one_component({}, int8), options);
    REQUIRE(q.has_value());
    expected_int8 = *test::run_workload(*q, 2);
    auto s = Session::open(model, test::one_component({}));
    REQUIRE(s.has_value());
    expected_native = *test::run_workload(*s, 2);
    auto c = Session::open(model, test::one_component({}, cast), options);
    REQUIRE(c.has_value());
    expected_cast = *test::run_workload(*c, 2);
  }
  // A persistent cache would be reused by the next open and hide the sites that write it: every
  // open of the walk starts without one.
  const auto clear_cache = [&dir] {
    for (const auto& e : std::filesystem::directory_iterator(dir.path()))
      if (e.path().filename().string().find("dmem-cache-") != std::string::npos)
        std::filesystem::remove(e.path());
  };
  std::uint64_t walked = 0;
  for (const Case& c : cases) {
    Placement p;
    p.kind = c.kind;
    p.park = c.park;
    const Strategy strategy = test::one_component(p, c.storage);
    const std::uint64_t expected = c.storage.kind == StorageKind::native      ? expected_native
                                   : c.storage.kind == StorageKind::quantized ? expected_int8
                                                                              : expected_cast;
    for (FaultSite site : {FaultSite::device_alloc, FaultSite::pinned_alloc, FaultSite::host_alloc,
                           FaultSite::read, FaultSite::short_read}) {
      // Count the calls a clean run makes at this site, then fail each one in turn.
      detail::fault_arm(site, 0);
      clear_cache();
      {
        auto s = Session::open(model, strategy, options);
        REQUIRE(s.has_value());
        REQUIRE(test::run_workload(*s, 2).has_value());
      }
      const std::uint64_t calls = detail::fault_calls(site);
      for (std::uint64_t n = 1; n <= calls; ++n) {
        INFO(c.name << " site " << static_cast<int>(site) << " call " << n << " of " << calls);
        detail::fault_arm(site, n);
        clear_cache();
        auto s = Session::open(model, strategy, options);
        ++walked;
        if (!s) {
          CHECK_FALSE(s.status().message().empty());
          continue;
        }
        auto first = test::run_workload(*s, 2);
        if (!first) CHECK_FALSE(first.status().message().empty());
        // After a failed acquire the session still works: the fault fired once.
        detail::fault_arm(site, 0);
        auto again = test::run_workload(*s, 2);
        REQUIRE(again.has_value());
        if (first) CHECK(*first == expected);
        CHECK(s->stats().copies_to_host == 0);
      }
    }
  }
  detail::fault_reset();
  CHECK(walked > 50);
}

TEST_CASE("host memory during load stays within the footprint plus the staging window",
          "[runtime][memory]") {
  test::TempDir dir;
  // About 48 MiB of weights in 24 blocks; a 1 MiB staging window per I/O thread.
  const Model model = test::make_block_model(dir.file("m.safetensors"), 24, 512);
  std::uint64_t total = 0;
  for (const auto& t : model.components[0].tensors) total += t.nbytes;
  REQUIRE(total > 40u << 20);
  SessionOptions options;
  options.staging_bytes = 1u << 20;
  options.io_threads = 2;
  options.cache_dir = dir.path().string();
  Storage cast;
  cast.kind = StorageKind::layerwise_cast;
  for (const bool with_cast : {false, true}) {
    INFO((with_cast ? "cast" : "native"));
    Placement disk;
    disk.kind = PlacementKind::disk;
    // Reset the high-water mark (Linux: writing 5 to clear_refs), then load.
    {
      std::ofstream clear("/proc/self/clear_refs");
      clear << "5";
    }
    const std::uint64_t before = rss_bytes();
    auto session =
        Session::open(model, test::one_component(disk, with_cast ? cast : Storage{}), options);
    REQUIRE(session.has_value());
    const std::uint64_t peak = peak_rss_bytes();
    const SessionStats s = session->stats();
    // Disk home: nothing stays in RAM; the load only streams through staging (cast: into the
    // cache file). Allowance: the staging window, plus 8 MiB for the allocator and page cache
    // accounting noise.
    const std::uint64_t window = 2ull * options.io_threads * options.staging_bytes;
    CHECK(s.staging_peak <= window);
    CHECK(peak - std::min(peak, before) <= window + (8u << 20));
    CHECK(peak - std::min(peak, before) < total / 2);
  }
  // Resident (the CPU device's memory is host memory): the weights once, never a second copy.
  {
    std::ofstream clear("/proc/self/clear_refs");
    clear << "5";
  }
  const std::uint64_t before = rss_bytes();
  auto session = Session::open(model, test::one_component({}), options);
  REQUIRE(session.has_value());
  const std::uint64_t grown = peak_rss_bytes() - std::min(peak_rss_bytes(), before);
  CHECK(grown <= total + 2ull * options.io_threads * options.staging_bytes + (8u << 20));
  CHECK(session->stats().device.in_use >= total);
}
