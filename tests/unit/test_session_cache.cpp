// The disk tier's persistent cache: a session given a cache folder leaves a complete cache file
// there, the next session with the same checkpoint, strategy and plugin reads it instead of
// transforming again (same outputs), and anything that changes the bytes makes a new one.
#include <catch2/catch.hpp>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "dmem/plugin_registry.hpp"
#include "dmem/session.hpp"
#include "support/runtime_fixture.hpp"
#include "support/test_support.hpp"

using namespace dmem;
namespace fs = std::filesystem;

namespace {

std::vector<fs::path> cache_files(const fs::path& dir) {
  std::vector<fs::path> out;
  for (const auto& e : fs::directory_iterator(dir))
    // Committed caches and temporaries (".dmem-cache-...tmp") alike.
    if (e.path().filename().string().find("dmem-cache-") != std::string::npos)
      out.push_back(e.path());
  return out;
}

Placement on_disk() {
  Placement p;
  p.kind = PlacementKind::disk;
  return p;
}

}  // namespace

TEST_CASE("a cache folder keeps transformed disk-tier weights for the next session",
          "[runtime][cache]") {
  test::TempDir dir;
  const fs::path cache_dir = dir.path() / "cache";
  fs::create_directories(cache_dir);
  const std::string path = dir.file("m.safetensors");
  Model model = test::make_block_model(path, 4, 64);
  PluginRegistry registry;
  REQUIRE(registry.load(DMEM_TEST_PLUGIN_INT8).is_ok());
  Storage cast;
  cast.kind = StorageKind::layerwise_cast;
  cast.cast_dtype = DType::f8_e4m3;
  Storage int8;
  int8.kind = StorageKind::quantized;
  int8.quantizer = "dmem.quantizer.int8_row_test";

  for (const Storage& storage : {cast, int8}) {
    INFO((storage.kind == StorageKind::quantized ? "int8 rows" : "fp8 cast"));
    for (const auto& f : cache_files(cache_dir)) fs::remove(f);
    SessionOptions options;
    options.plugins = &registry;
    options.cache_dir = cache_dir.string();

    auto first = Session::open(model, test::one_component(on_disk(), storage), options);
    if (!first) FAIL(first.status().to_string());
    CHECK_FALSE(first->stats().cache_reused);
    auto expected = test::run_workload(*first, 2);
    REQUIRE(expected.has_value());
    const auto files = cache_files(cache_dir);
    REQUIRE(files.size() == 1);  // committed by rename: no temporary left beside it
    const auto size = fs::file_size(files[0]);
    CHECK(size > 0);

    auto second = Session::open(model, test::one_component(on_disk(), storage), options);
    if (!second) FAIL(second.status().to_string());
    CHECK(second->stats().cache_reused);
    CHECK(second->stats().load_bytes < first->stats().load_bytes);
    auto again = test::run_workload(*second, 2);
    REQUIRE(again.has_value());
    CHECK(*again == *expected);
    second->finish("transformer");
    first->finish("transformer");

    // A damaged trailer is not trusted: the cache is written again, whole.
    {
      std::fstream f(files[0], std::ios::in | std::ios::out | std::ios::binary);
      f.seekp(static_cast<std::streamoff>(size) - 1);
      f.put('\x5A');
    }
    auto third = Session::open(model, test::one_component(on_disk(), storage), options);
    if (!third) FAIL(third.status().to_string());
    CHECK_FALSE(third->stats().cache_reused);
    auto sum = test::run_workload(*third, 2);
    REQUIRE(sum.has_value());
    CHECK(*sum == *expected);
    CHECK(cache_files(cache_dir).size() == 1);
  }

  // Another storage of the same checkpoint keys a different file.
  CHECK(cache_files(cache_dir).size() == 1);
  {
    SessionOptions options;
    options.plugins = &registry;
    options.cache_dir = cache_dir.string();
    auto s = Session::open(model, test::one_component(on_disk(), cast), options);
    REQUIRE(s.has_value());
    CHECK_FALSE(s->stats().cache_reused);
    CHECK(cache_files(cache_dir).size() == 2);
  }

  // A checkpoint rewritten in place (new modification time) never reuses the old cache.
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  model = test::make_block_model(path, 4, 64);
  {
    SessionOptions options;
    options.plugins = &registry;
    options.cache_dir = cache_dir.string();
    auto s = Session::open(model, test::one_component(on_disk(), cast), options);
    REQUIRE(s.has_value());
    CHECK_FALSE(s->stats().cache_reused);
    CHECK(cache_files(cache_dir).size() == 3);
  }
}

TEST_CASE("without a cache folder the cache file is a temporary removed at close",
          "[runtime][cache]") {
  test::TempDir dir;
  const Model model = test::make_block_model(dir.file("m.safetensors"), 3, 48);
  Storage cast;
  cast.kind = StorageKind::layerwise_cast;
  const std::string tmp = dir.path().string();
  ::setenv("TMPDIR", tmp.c_str(), 1);
  {
    auto s = Session::open(model, test::one_component(on_disk(), cast));
    REQUIRE(s.has_value());
    CHECK_FALSE(s->stats().cache_reused);
    CHECK_FALSE(cache_files(dir.path()).empty());
    REQUIRE(test::run_workload(*s, 1).has_value());
  }
  ::unsetenv("TMPDIR");
  CHECK(cache_files(dir.path()).empty());
  CHECK(fs::directory_iterator(dir.path()) != fs::directory_iterator());  // the model is there
}
