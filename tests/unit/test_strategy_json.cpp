// Strategy JSON: a round trip of every field, the short forms, and every error path naming its key.
#include <catch2/catch.hpp>

#include <string>

#include "dmem/quantizer.hpp"
#include "dmem/strategy.hpp"

using namespace dmem;

namespace {

Strategy sample() {
  Strategy s;
  ComponentStrategy t;
  t.component = "transformer";
  t.placement.kind = PlacementKind::partial;
  t.placement.resident_blocks = 42;
  t.placement.prefetch = 2;
  t.placement.park = Tier::pageable;
  t.storage.kind = StorageKind::quantized;
  t.storage.quantizer = "dmem.quantizer.gguf";
  t.storage.params = {{"type", "q6_k"}};
  t.storage.compute_dtype = DType::f16;
  ComponentStrategy te;
  te.component = "text_encoder";
  te.placement.kind = PlacementKind::group_offload;
  te.placement.level = OffloadLevel::leaf;
  te.placement.use_stream = false;
  te.placement.record_stream = false;
  te.placement.gpu = 1;
  te.storage.kind = StorageKind::layerwise_cast;
  te.storage.cast_dtype = DType::f8_e5m2;
  ComponentStrategy v;
  v.component = "vae";
  v.placement.kind = PlacementKind::disk;
  v.placement.park = Tier::disk;
  s.components = {t, te, v};
  s.vae_tiling = true;
  return s;
}

std::string error_of(const std::string& json) {
  auto r = strategy_from_json(json);
  if (r) return "(parsed)";
  return r.status().message() + " | " + r.status().hint();
}

}  // namespace

TEST_CASE("strategy JSON round-trips every field", "[strategy]") {
  const Strategy s = sample();
  const std::string text = strategy_to_json(s);
  auto back = strategy_from_json(text);
  REQUIRE(back);
  CHECK(strategy_to_json(*back) == text);
  REQUIRE(back->components.size() == 3);
  const auto& t = back->components[0];
  CHECK(t.component == "transformer");
  CHECK(t.placement.kind == PlacementKind::partial);
  CHECK(t.placement.resident_blocks == 42);
  CHECK(t.placement.prefetch == 2);
  CHECK(t.placement.park == Tier::pageable);
  CHECK(t.storage.kind == StorageKind::quantized);
  CHECK(t.storage.quantizer == "dmem.quantizer.gguf");
  REQUIRE(t.storage.params.size() == 1);
  CHECK(t.storage.params[0].second == "q6_k");
  CHECK(t.storage.compute_dtype == DType::f16);
  const auto* te = back->find("text_encoder");
  REQUIRE(te != nullptr);
  CHECK(te->placement.level == OffloadLevel::leaf);
  CHECK(!te->placement.use_stream);
  CHECK(te->placement.gpu == 1);
  CHECK(te->storage.cast_dtype == DType::f8_e5m2);
  CHECK(back->find("vae")->placement.kind == PlacementKind::disk);
  CHECK(back->find("unet") == nullptr);
  CHECK(back->vae_tiling);
  CHECK(!back->vae_slicing);
}

TEST_CASE("strategy JSON short forms and defaults", "[strategy]") {
  auto s = strategy_from_json(R"({
    "components": [
      {"component": "transformer", "placement": "model_offload",
       "storage": {"kind": "quantized", "quantizer": "nf4", "params": {"double_quant": true, "blocksize": 64}}},
      {"component": "vae"}
    ]})");
  REQUIRE(s);
  const auto& t = s->components[0];
  CHECK(t.placement.kind == PlacementKind::model_offload);
  CHECK(t.storage.quantizer == "dmem.quantizer.nf4");
  const QuantizerCaps* caps = storage_caps(t.storage);
  REQUIRE(caps != nullptr);
  CHECK(caps->variant == "nf4-dq");
  const auto& v = s->components[1];
  CHECK(v.placement.kind == PlacementKind::resident);
  CHECK(v.storage.kind == StorageKind::native);
  CHECK(v.storage.compute_dtype == DType::bf16);
}

TEST_CASE("strategy JSON errors name the key and the allowed values", "[strategy]") {
  struct Case {
    const char* json;
    const char* needle;
  };
  const Case cases[] = {
      {R"({"components": [)", "not valid JSON"},
      {R"([1])", "top level"},
      {R"({"components": [], "vae_tile": true})", "vae_tile"},
      {R"({})", "components"},
      {R"({"components": {}})", "components"},
      {R"({"version": 2, "components": []})", "version"},
      {R"({"components": [], "vae_tiling": "yes"})", "vae_tiling"},
      {R"({"components": [1]})", "components[0]"},
      {R"({"components": [{"placement": "resident"}]})", "components[0].component"},
      {R"({"components": [{"component": "vae"}, {"component": "vae"}]})", "more than once"},
      {R"({"components": [{"component": "vae", "place": "resident"}]})", "components[0].place"},
      {R"({"components": [{"component": "vae", "placement": "somewhere"}]})",
       "components[0].placement.kind"},
      {R"({"components": [{"component": "vae", "placement": {"level": "block"}}]})",
       "placement.kind"},
      {R"({"components": [{"component": "vae", "placement": {"kind": "group_offload", "level": "tree"}}]})",
       "placement.level"},
      {R"({"components": [{"component": "vae", "placement": {"kind": "group_offload", "blocks_per_group": 0}}]})",
       "blocks_per_group"},
      {R"({"components": [{"component": "vae", "placement": {"kind": "group_offload", "use_stream": 1}}]})",
       "use_stream"},
      {R"({"components": [{"component": "vae", "placement": {"kind": "resident", "gpu": -1}}]})",
       "gpu"},
      {R"({"components": [{"component": "vae", "placement": {"kind": "partial", "resident_blocks": 1.5}}]})",
       "resident_blocks"},
      {R"({"components": [{"component": "vae", "placement": {"kind": "model_offload", "park": "cloud"}}]})",
       "placement.park"},
      {R"({"components": [{"component": "vae", "placement": {"kind": "resident", "streams": true}}]})",
       "placement.streams"},
      {R"({"components": [{"component": "vae", "storage": "nf4"}]})", "storage"},
      {R"({"components": [{"component": "vae", "storage": {}}]})", "storage.kind"},
      {R"({"components": [{"component": "vae", "storage": {"kind": "int4"}}]})", "storage.kind"},
      {R"({"components": [{"component": "vae", "storage": {"kind": "native", "quantizer": "nf4"}}]})",
       "storage.quantizer"},
      {R"({"components": [{"component": "vae", "storage": {"kind": "native", "dtype": "f8_e4m3"}}]})",
       "storage.dtype"},
      {R"({"components": [{"component": "vae", "storage": {"kind": "layerwise_cast", "dtype": "f32"}}]})",
       "storage.dtype"},
      {R"({"components": [{"component": "vae", "storage": {"kind": "quantized"}}]})",
       "storage.quantizer"},
      {R"({"components": [{"component": "vae", "storage": {"kind": "quantized", "quantizer": "awq"}}]})",
       "awq"},
      {R"({"components": [{"component": "vae", "storage": {"kind": "quantized", "quantizer": 4}}]})",
       "storage.quantizer"},
      {R"({"components": [{"component": "vae", "storage": {"kind": "quantized", "quantizer": "gguf"}}]})",
       "params.type"},
      {R"({"components": [{"component": "vae", "storage": {"kind": "quantized", "quantizer": "gguf", "params": {"type": "q3_k"}}}]})",
       "params.type"},
      {R"({"components": [{"component": "vae", "storage": {"kind": "quantized", "quantizer": "nf4", "params": {"blocksize": 128}}}]})",
       "params.blocksize"},
      {R"({"components": [{"component": "vae", "storage": {"kind": "quantized", "quantizer": "nf4", "params": {"group": 1}}}]})",
       "params.group"},
      {R"({"components": [{"component": "vae", "storage": {"kind": "quantized", "quantizer": "nf4", "params": {"double_quant": 1.5}}}]})",
       "double_quant"},
      {R"({"components": [{"component": "vae", "storage": {"kind": "native", "compute_dtype": "f8_e4m3"}}]})",
       "compute_dtype"},
  };
  for (const auto& c : cases) {
    INFO(c.json);
    const std::string err = error_of(c.json);
    CHECK(err.find(c.needle) != std::string::npos);
  }
  // The hint lists what is allowed.
  auto r =
      strategy_from_json(R"({"components": [{"component": "vae", "placement": "somewhere"}]})");
  REQUIRE(!r);
  CHECK(r.status().code() == Errc::invalid_argument);
  CHECK(r.status().rule() == "strategy.json");
  CHECK(r.status().hint().find("group_offload") != std::string::npos);
  r = strategy_from_json(
      R"({"components": [{"component": "vae", "storage": {"kind": "quantized", "quantizer": "gguf", "params": {"type": "q3_k"}}}]})");
  REQUIRE(!r);
  CHECK(r.status().hint().find("q4_k") != std::string::npos);
  // Syntax errors carry the offset.
  r = strategy_from_json("{\"components\": [}");
  REQUIRE(!r);
  CHECK(r.status().has_offset());
}

TEST_CASE("strategy summaries name each component's storage and placement", "[strategy]") {
  const std::string s = strategy_summary(sample());
  CHECK(s.find("transformer gguf q6_k 42 blocks resident") != std::string::npos);
  CHECK(s.find("text_encoder fp8 e5m2 (cast) group offload (leaf)") != std::string::npos);
  CHECK(s.find("on gpu 1") != std::string::npos);
  CHECK(s.find("vae native streamed from disk") != std::string::npos);
  CHECK(s.find("vae tiling") != std::string::npos);
  CHECK(strategy_summary(Strategy{}) == "(empty strategy)");
}

TEST_CASE("strategy JSON: a 16-bit downcast reads and writes, old files still read", "[strategy]") {
  auto s = strategy_from_json(R"({"components": [{"component": "transformer",
      "storage": {"kind": "layerwise_cast", "dtype": "bf16"}}]})");
  REQUIRE(s);
  const Storage& st = s->components.front().storage;
  CHECK(st.kind == StorageKind::layerwise_cast);
  CHECK(st.cast_dtype == DType::bf16);
  REQUIRE(storage_caps(st) != nullptr);
  CHECK(storage_caps(st)->display == "bf16 (downcast)");
  auto back = strategy_from_json(strategy_to_json(*s));
  REQUIRE(back);
  CHECK(back->components.front().storage.cast_dtype == DType::bf16);
  // A file written before 16-bit casts existed (no dtype) still means fp8 e4m3.
  auto old = strategy_from_json(R"({"components": [{"component": "transformer",
      "storage": {"kind": "layerwise_cast"}}]})");
  REQUIRE(old);
  CHECK(old->components.front().storage.cast_dtype == DType::f8_e4m3);
  auto bad = strategy_from_json(R"({"components": [{"component": "transformer",
      "storage": {"kind": "layerwise_cast", "dtype": "f32"}}]})");
  REQUIRE_FALSE(bad);
  INFO(bad.status().to_string());
  CHECK(bad.status().to_string().find("bf16") != std::string::npos);
}
