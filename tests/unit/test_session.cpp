// Session on the CPU device: every placement gives the resident run's outputs bit for bit, stays
// within its budgets, never copies weights back, and fails cleanly.
#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "dmem/catalog.hpp"
#include "dmem/session.hpp"
#include "support/runtime_fixture.hpp"
#include "support/test_support.hpp"

using namespace dmem;
using dmem::test::TempDir;

namespace {

Placement placement(PlacementKind kind) {
  Placement p;
  p.kind = kind;
  return p;
}

std::uint64_t resident_checksum(const Model& model, const Storage& storage = {}) {
  auto session =
      Session::open(model, test::one_component(placement(PlacementKind::resident), storage));
  REQUIRE(session.has_value());
  auto sum = test::run_workload(*session, 2);
  REQUIRE(sum.has_value());
  return *sum;
}

std::vector<std::pair<std::string, Placement>> every_placement() {
  std::vector<std::pair<std::string, Placement>> all;
  for (auto kind :
       {PlacementKind::resident, PlacementKind::model_offload, PlacementKind::sequential,
        PlacementKind::cpu, PlacementKind::disk, PlacementKind::dropped}) {
    all.emplace_back(std::string("kind ") + std::to_string(static_cast<int>(kind)),
                     placement(kind));
  }
  for (std::uint32_t per : {1u, 2u, 4u}) {
    for (bool stream : {true, false}) {
      Placement p = placement(PlacementKind::group_offload);
      p.blocks_per_group = per;
      p.use_stream = stream;
      all.emplace_back("group " + std::to_string(per) + (stream ? " stream" : " sync"), p);
    }
  }
  Placement leaf = placement(PlacementKind::group_offload);
  leaf.level = OffloadLevel::leaf;
  all.emplace_back("group leaf", leaf);
  for (std::uint32_t k : {0u, 2u, 6u}) {
    Placement p = placement(PlacementKind::partial);
    p.resident_blocks = k;
    p.prefetch = 2;
    all.emplace_back("partial " + std::to_string(k), p);
  }
  for (Tier tier : {Tier::pageable, Tier::disk}) {
    Placement p = placement(PlacementKind::group_offload);
    p.park = tier;
    all.emplace_back(tier == Tier::disk ? "group park disk" : "group park pageable", p);
    Placement m = placement(PlacementKind::model_offload);
    m.park = tier;
    all.emplace_back(tier == Tier::disk ? "model park disk" : "model park pageable", m);
  }
  return all;
}

}  // namespace

TEST_CASE("every placement gives the resident run's outputs bit for bit", "[runtime]") {
  TempDir dir;
  const Model model = test::make_block_model(dir.file("m.safetensors"));
  const std::uint64_t expected = resident_checksum(model);
  for (const auto& [name, p] : every_placement()) {
    INFO(name);
    auto session = Session::open(model, test::one_component(p));
    REQUIRE(session.has_value());
    auto sum = test::run_workload(*session, 2);
    REQUIRE(sum.has_value());
    CHECK(*sum == expected);
    const SessionStats s = session->stats();
    CHECK(s.copies_to_host == 0);
    CHECK(s.acquires == 2 * session->modules("transformer").size());
    // A pinning call per session at most, all during load.
    CHECK(s.pin_calls <= 1);
  }
}

TEST_CASE("layerwise-cast weights rest in fp8 and give the same outputs in every placement",
          "[runtime]") {
  TempDir dir;
  const Model model = test::make_block_model(dir.file("m.safetensors"));
  Storage cast;
  cast.kind = StorageKind::layerwise_cast;
  cast.cast_dtype = DType::f8_e4m3;
  const std::uint64_t native = resident_checksum(model);
  const std::uint64_t expected = resident_checksum(model, cast);
  CHECK(expected != native);  // the cast changed the weights
  SessionOptions options;
  options.cache_dir = dir.path().string();
  for (const auto& [name, p] : every_placement()) {
    INFO(name);
    auto session = Session::open(model, test::one_component(p, cast), options);
    REQUIRE(session.has_value());
    auto handle = session->acquire("transformer", "transformer_blocks.0");
    REQUIRE(handle.has_value());
    const TensorView* q = handle->find("transformer_blocks.0.attn.to_q.weight");
    REQUIRE(q != nullptr);
    CHECK(q->dtype == DType::bf16);  // upcast to the compute dtype on acquire
    const TensorView* norm = handle->find("transformer_blocks.0.norm1.weight");
    REQUIRE(norm != nullptr);
    CHECK(norm->dtype == DType::f32);  // norms keep their dtype
    handle->release();
    auto sum = test::run_workload(*session, 2);
    REQUIRE(sum.has_value());
    CHECK(*sum == expected);
  }
}

TEST_CASE("the device store never exceeds its budget and streamed groups are dropped",
          "[runtime][threads]") {
  TempDir dir;
  const Model model = test::make_block_model(dir.file("m.safetensors"), 8, 64);
  // Synchronous streaming holds one group at a time: its peak is the largest group.
  Placement sync = placement(PlacementKind::group_offload);
  sync.use_stream = false;
  auto probe = Session::open(model, test::one_component(sync));
  REQUIRE(probe.has_value());
  REQUIRE(test::run_workload(*probe, 1).has_value());
  const std::uint64_t largest = probe->stats().device.peak;
  CHECK(probe->stats().prefetch_hits == 0);

  // Streamed with prefetch 1: room for the group in use and the next one.
  Placement p = placement(PlacementKind::group_offload);
  p.prefetch = 1;
  SessionOptions options;
  options.device_budget = 2 * largest;
  auto session = Session::open(model, test::one_component(p), options);
  REQUIRE(session.has_value());
  REQUIRE(test::run_workload(*session, 3).has_value());
  const SessionStats s = session->stats();
  CHECK(s.device.peak <= options.device_budget);
  CHECK(s.evictions > 0);
  CHECK(s.copies_to_host == 0);
  CHECK(s.bytes_to_device > 0);
  // Streamed groups are dropped after use; what stays is prefetched for the next step, and
  // finish() lets that go too.
  CHECK(s.device.in_use <= options.device_budget);
  session->finish("transformer");
  CHECK(session->stats().device.in_use == 0);

  // Prefetch, deterministically: release a block, wait until the next one has arrived, acquire it.
  const auto units = session->modules("transformer");
  REQUIRE(units.size() > 2);
  // The acquire's own copy and the prefetch's (released groups may stay mapped as spares, so
  // the device store's use does not tell that the prefetch has landed).
  const std::uint64_t copies = session->stats().copies_to_device;
  {
    auto first = session->acquire("transformer", units[0]);
    REQUIRE(first.has_value());
  }
  for (int i = 0; i < 5000 && session->stats().copies_to_device < copies + 2; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  const std::uint64_t hits = session->stats().prefetch_hits;
  auto second = session->acquire("transformer", units[1]);
  REQUIRE(second.has_value());
  CHECK(session->stats().prefetch_hits == hits + 1);
}

TEST_CASE("a device budget below the kept weights fails at open, naming the store", "[runtime]") {
  TempDir dir;
  const Model model = test::make_block_model(dir.file("m.safetensors"));
  SessionOptions options;
  options.device_budget = 1000;
  auto session =
      Session::open(model, test::one_component(placement(PlacementKind::resident)), options);
  REQUIRE_FALSE(session.has_value());
  CHECK(session.status().code() == Errc::out_of_memory);
  CHECK(session.status().rule() == "runtime.budget.device");
}

TEST_CASE("model offload swaps the whole component in and finish() drops it", "[runtime]") {
  TempDir dir;
  const Model model = test::make_block_model(dir.file("m.safetensors"));
  auto session = Session::open(model, test::one_component(placement(PlacementKind::model_offload)));
  REQUIRE(session.has_value());
  CHECK(session->stats().device.in_use == 0);
  {
    auto handle = session->acquire("transformer", "transformer_blocks.3");
    REQUIRE(handle.has_value());
    CHECK(session->stats().device.in_use >= session->stats().pinned.in_use);
  }
  session->finish("transformer");
  CHECK(session->stats().device.in_use == 0);
  CHECK(session->stats().copies_to_host == 0);
}

TEST_CASE("acquire and linear report unknown names and released handles", "[runtime]") {
  TempDir dir;
  const Model model = test::make_block_model(dir.file("m.safetensors"));
  auto session = Session::open(model, test::one_component(placement(PlacementKind::resident)));
  REQUIRE(session.has_value());
  auto none = session->acquire("vae", "x");
  REQUIRE_FALSE(none.has_value());
  CHECK(none.status().rule() == "runtime.component");
  auto missing = session->acquire("transformer", "transformer_blocks.99");
  REQUIRE_FALSE(missing.has_value());
  CHECK(missing.status().rule() == "runtime.module");
  auto handle = session->acquire("transformer", "transformer_blocks.1");
  REQUIRE(handle.has_value());
  std::vector<float> x(48 * 2), y(48 * 2);
  CHECK(session->linear(*handle, "transformer_blocks.1.norm1", x.data(), 2, y.data()).rule() ==
        "runtime.linear.weight");
  CHECK(session->linear(*handle, "transformer_blocks.1.attn.to_q", x.data(), 2, y.data()).is_ok());
  handle->release();
  CHECK(session->linear(*handle, "transformer_blocks.1.attn.to_q", x.data(), 2, y.data()).rule() ==
        "runtime.handle");
  // A leaf can be acquired on its own.
  auto leaf = session->acquire("transformer", "transformer_blocks.2.attn.to_q");
  REQUIRE(leaf.has_value());
  CHECK(leaf->tensors().size() == 2);
}

TEST_CASE("a catalog model or quantized storage is refused before anything loads", "[runtime]") {
  auto qwen = open_model("flux1-dev");
  REQUIRE(qwen.has_value());
  Strategy s;
  s.components.push_back({"transformer", placement(PlacementKind::resident), {}});
  auto session = Session::open(*qwen, s);
  REQUIRE_FALSE(session.has_value());
  CHECK(session.status().rule() == "runtime.no_files");
  CHECK(session.status().hint().find("--scale-down") != std::string::npos);

  TempDir dir;
  const Model model = test::make_block_model(dir.file("m.safetensors"));
  Storage unknown;
  unknown.kind = StorageKind::quantized;
  unknown.quantizer = "dmem.quantizer.not_installed";
  auto q = Session::open(model, test::one_component(placement(PlacementKind::resident), unknown));
  REQUIRE_FALSE(q.has_value());
  // No plugin has that id: the error names the component and how to find the plugin.
  CHECK(q.status().rule() == "plugin.missing");
  CHECK(q.status().message().find("transformer") != std::string::npos);
  CHECK(q.status().hint().find("DMEM_PLUGIN_PATH") != std::string::npos);
}

TEST_CASE("two threads acquire and release concurrently with the same outputs",
          "[runtime][threads]") {
  TempDir dir;
  const Model model = test::make_block_model(dir.file("m.safetensors"), 8);
  Placement p = placement(PlacementKind::group_offload);
  p.prefetch = 2;
  const std::uint64_t expected = resident_checksum(model);
  SessionOptions options;
  options.trace = true;  // the recorder is shared by both threads and the copy worker
  auto session = Session::open(model, test::one_component(p), options);
  REQUIRE(session.has_value());
  std::atomic<int> failures{0};
  std::vector<std::uint64_t> sums(2);
  std::vector<std::thread> threads;
  for (int t = 0; t < 2; ++t) {
    threads.emplace_back([&, t] {
      auto sum = test::run_workload(*session, 2);
      if (!sum) {
        failures.fetch_add(1);
        return;
      }
      sums[static_cast<std::size_t>(t)] = *sum;
    });
  }
  for (auto& t : threads) t.join();
  CHECK(failures.load() == 0);
  CHECK(sums[0] == expected);
  CHECK(sums[1] == expected);
  CHECK(session->stats().copies_to_host == 0);
  TempDir out;
  CHECK(session->write_trace(out.file("t.json")).is_ok());
}

TEST_CASE("load reports progress and reads every byte once", "[runtime][threads]") {
  TempDir dir;
  const Model model = test::make_block_model(dir.file("m.safetensors"), 4, 128);
  std::uint64_t total = 0;
  for (const auto& t : model.components[0].tensors) total += t.nbytes;
  SessionOptions options;
  std::vector<LoadProgress> seen;
  options.progress = [&](const LoadProgress& p) { seen.push_back(p); };
  options.staging_bytes = 64 << 10;
  auto session =
      Session::open(model, test::one_component(placement(PlacementKind::resident)), options);
  REQUIRE(session.has_value());
  REQUIRE_FALSE(seen.empty());
  CHECK(seen.back().bytes_done == total);
  CHECK(seen.back().bytes_total == total);
  CHECK(session->stats().load_bytes == total);
}
