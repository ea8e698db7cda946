// Quantized storage in a Session: the component's quantizer (a plugin, here the int8-per-row
// test plugin) packs linear weights while loading; every placement moves the packed bytes and
// gives the resident run's outputs bit for bit; linear layers run through the plugin.
#include <catch2/catch.hpp>

#include <cmath>
#include <string>
#include <vector>

#include "dmem/plugin_registry.hpp"
#include "dmem/session.hpp"
#include "support/runtime_fixture.hpp"
#include "support/test_support.hpp"

using namespace dmem;

namespace {

Storage int8_rows() {
  Storage s;
  s.kind = StorageKind::quantized;
  s.quantizer = "dmem.quantizer.int8_row_test";
  return s;
}

}  // namespace

TEST_CASE("quantized storage packs linear weights through the plugin in every placement",
          "[runtime][plugins]") {
  test::TempDir dir;
  const Model model = test::make_block_model(dir.file("m.safetensors"), 4, 64);
  PluginRegistry registry;
  REQUIRE(registry.load(DMEM_TEST_PLUGIN_INT8).is_ok());
  SessionOptions options;
  options.plugins = &registry;
  options.cache_dir = dir.path().string();

  auto resident = Session::open(model, test::one_component({}, int8_rows()), options);
  if (!resident) FAIL(resident.status().to_string());
  // Packed: to_q (64x64 bf16) is 64 f32 scales + 4096 codes; the norm keeps its f32 bytes.
  {
    auto block = resident->acquire("transformer", "transformer_blocks.0");
    REQUIRE(block.has_value());
    const TensorView* q = block->find("transformer_blocks.0.attn.to_q.weight");
    REQUIRE(q != nullptr);
    CHECK(q->packed);
    CHECK(q->nbytes == 64 * 4 + 64 * 64);
    CHECK(q->dtype == DType::f32);  // this plugin takes f32 only: the bf16 weight was widened
    const TensorView* bias = block->find("transformer_blocks.0.attn.to_q.bias");
    REQUIRE(bias != nullptr);
    CHECK_FALSE(bias->packed);
    const TensorView* norm = block->find("transformer_blocks.0.norm1.weight");
    REQUIRE(norm != nullptr);
    CHECK_FALSE(norm->packed);
  }
  auto expected = test::run_workload(*resident, 2);
  if (!expected) FAIL(expected.status().to_string());

  // Int8 rows stay close to the native weights: compare one layer against the native session.
  {
    auto native = Session::open(model, test::one_component({}));
    REQUIRE(native.has_value());
    auto a = native->acquire("transformer", "transformer_blocks.1");
    auto b = resident->acquire("transformer", "transformer_blocks.1");
    REQUIRE(a.has_value());
    REQUIRE(b.has_value());
    const std::size_t tokens = 3;
    std::vector<float> x(tokens * 64), y_native(tokens * 128), y_int8(tokens * 128);
    for (std::size_t i = 0; i < x.size(); ++i) x[i] = std::sin(static_cast<float>(i));
    const char* leaf = "transformer_blocks.1.ff.net.0.proj";  // [128, 64] bf16
    REQUIRE(native->linear(*a, leaf, x.data(), tokens, y_native.data()).is_ok());
    REQUIRE(resident->linear(*b, leaf, x.data(), tokens, y_int8.data()).is_ok());
    double err = 0, norm = 0;
    for (std::size_t i = 0; i < y_native.size(); ++i) {
      err = std::max(err, static_cast<double>(std::fabs(y_native[i] - y_int8[i])));
      norm = std::max(norm, static_cast<double>(std::fabs(y_native[i])));
    }
    CHECK(err > 0);            // it did run the int8 path
    CHECK(err < 0.02 * norm);  // int8 per-row absmax: well under 2 % of the output's range
  }

  for (PlacementKind kind :
       {PlacementKind::group_offload, PlacementKind::sequential, PlacementKind::model_offload,
        PlacementKind::disk, PlacementKind::cpu, PlacementKind::partial}) {
    INFO("placement " << static_cast<int>(kind));
    Placement p;
    p.kind = kind;
    p.resident_blocks = 2;
    auto session = Session::open(model, test::one_component(p, int8_rows()), options);
    REQUIRE(session.has_value());
    auto sum = test::run_workload(*session, 2);
    REQUIRE(sum.has_value());
    CHECK(*sum == *expected);
    CHECK(session->stats().copies_to_host == 0);
  }
}

TEST_CASE("quantized storage errors name the component, the plugin and the fix",
          "[runtime][plugins]") {
  test::TempDir dir;
  const Model model = test::make_block_model(dir.file("m.safetensors"), 2, 32);
  PluginRegistry registry;
  REQUIRE(registry.load(DMEM_TEST_PLUGIN_INT8).is_ok());
  SessionOptions options;
  options.plugins = &registry;
  Storage bad = int8_rows();
  bad.params = {{"bits", "4"}};  // the test plugin implements 8 only
  auto refused = Session::open(model, test::one_component({}, bad), options);
  REQUIRE_FALSE(refused.has_value());
  CHECK(refused.status().rule() == "plugin.create");
  CHECK(refused.status().message().find("transformer") != std::string::npos);
  CHECK(refused.status().message().find("bits=8") != std::string::npos);

  Storage unknown = int8_rows();
  unknown.quantizer = "dmem.quantizer.nope";
  auto missing = Session::open(model, test::one_component({}, unknown), options);
  REQUIRE_FALSE(missing.has_value());
  CHECK(missing.status().rule() == "plugin.missing");
}
