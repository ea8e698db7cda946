// Quantizer capabilities and exact stored bytes (FORMATS.md §2.5, §3.5, §4.3).
#include <catch2/catch.hpp>

#include <set>
#include <string>

#include "dmem/quantizer.hpp"

using namespace dmem;

namespace {
TensorInfo weight(std::uint64_t out, std::uint64_t in, DType dt = DType::bf16) {
  TensorInfo t;
  t.name = "blocks.0.attn.to_q.weight";
  t.dtype = dt;
  t.shape = {out, in};
  t.nbytes = out * in * dtype_info(dt).block_bytes;
  return t;
}
}  // namespace

TEST_CASE("the stock quantizers are described by capability", "[validate]") {
  std::set<std::string> variants;
  for (const auto& c : builtin_quantizers()) variants.insert(c.id + "/" + c.variant);
  for (const char* v :
       {"dmem.quantizer.nf4/nf4", "dmem.quantizer.nf4/nf4-dq", "dmem.quantizer.bnb_int8/int8",
        "dmem.quantizer.gguf/q8_0", "dmem.quantizer.gguf/q6_k", "dmem.quantizer.gguf/q5_k",
        "dmem.quantizer.gguf/q4_k", "dmem.quantizer.gguf/q4_0", "dmem.quantizer.fp8_cast/e4m3",
        "dmem.quantizer.fp8_cast/e5m2", "dmem.quantizer.fp8/e4m3"})
    CHECK(variants.count(v) == 1);
  const auto* int8 = find_quantizer("dmem.quantizer.bnb_int8");
  REQUIRE(int8 != nullptr);
  CHECK(int8->exec_devices == kDeviceCuda);
  CHECK(int8->storage_tiers == kTierVram);
  const auto* cast = find_quantizer("dmem.quantizer.fp8_cast", "e4m3");
  REQUIRE(cast != nullptr);
  CHECK(cast->is_cast);
  CHECK(cast->min_sm == 0);
  CHECK((cast->exec_devices & kDeviceCpu) != 0);
  CHECK(find_quantizer("dmem.quantizer.fp8")->min_sm == 89);
  // Documented quality order: native > fp8 > int8 ≈ q8_0 > q6_k > q5_k > nf4 ≈ q4_k > q4_0.
  auto tier = [](const char* id, const char* variant) {
    return find_quantizer(id, variant)->quality;
  };
  CHECK(tier("dmem.quantizer.fp8_cast", "e4m3") < tier("dmem.quantizer.bnb_int8", "int8"));
  CHECK(tier("dmem.quantizer.bnb_int8", "int8") == tier("dmem.quantizer.gguf", "q8_0"));
  CHECK(tier("dmem.quantizer.gguf", "q8_0") < tier("dmem.quantizer.gguf", "q6_k"));
  CHECK(tier("dmem.quantizer.gguf", "q6_k") < tier("dmem.quantizer.gguf", "q5_k"));
  CHECK(tier("dmem.quantizer.gguf", "q5_k") < tier("dmem.quantizer.nf4", "nf4"));
  CHECK(tier("dmem.quantizer.nf4", "nf4") == tier("dmem.quantizer.gguf", "q4_k"));
  CHECK(tier("dmem.quantizer.gguf", "q4_k") < tier("dmem.quantizer.gguf", "q4_0"));
  CHECK(quality_name(QualityTier::native) == "native");
  CHECK(quality_name(QualityTier::q4) == "q4");
}

TEST_CASE("storage_caps resolves a strategy's storage", "[validate]") {
  Storage s;
  CHECK(storage_caps(s) == nullptr);
  s.kind = StorageKind::layerwise_cast;
  s.cast_dtype = DType::f8_e5m2;
  REQUIRE(storage_caps(s) != nullptr);
  CHECK(storage_caps(s)->variant == "e5m2");
  s.kind = StorageKind::quantized;
  s.quantizer = "dmem.quantizer.gguf";
  s.params = {{"type", "q5_k"}};
  CHECK(storage_caps(s)->variant == "q5_k");
  s.quantizer = "dmem.quantizer.nf4";
  s.params = {};
  CHECK(storage_caps(s)->variant == "nf4");
  s.params = {{"double_quant", "true"}};
  CHECK(storage_caps(s)->variant == "nf4-dq");
  s.quantizer = "dmem.quantizer.awq";
  CHECK(storage_caps(s) == nullptr);
}

TEST_CASE("quantized_bytes is the exact stored size", "[validate]") {
  const TensorInfo w = weight(3072, 3072);
  const std::uint64_t n = 3072ull * 3072ull;

  // nf4, blocksize 64: packed codes + f32 absmax per block + 16-entry f32 quant map + the JSON
  // quant state (Python's json.dumps spelling).
  const std::string state =
      R"({"quant_type": "nf4", "blocksize": 64, "dtype": "bfloat16", "shape": [3072, 3072]})";
  CHECK(quantized_bytes(*find_quantizer("dmem.quantizer.nf4", "nf4"), w, true) ==
        n / 2 + (n / 64) * 4 + 64 + state.size());
  // Double quant: u8 absmax, f32 nested absmax per 256 blocks, 256-entry f32 nested map.
  const std::string nested =
      std::string(state, 0, state.size() - 1) +
      R"(, "nested_blocksize": 256, "nested_dtype": "float32", "nested_offset": 00000000000000000000})";
  CHECK(quantized_bytes(*find_quantizer("dmem.quantizer.nf4", "nf4-dq"), w, true) ==
        n / 2 + n / 64 + (n / 64 / 256) * 4 + 1024 + 64 + nested.size());
  // Odd element counts pad one nibble; a partial last block has its own absmax.
  const TensorInfo odd = weight(3, 33);  // 99 elements: 50 packed bytes, 2 blocks
  const std::string odd_state =
      R"({"quant_type": "nf4", "blocksize": 64, "dtype": "bfloat16", "shape": [3, 33]})";
  CHECK(quantized_bytes(*find_quantizer("dmem.quantizer.nf4", "nf4"), odd, true) ==
        50 + 8 + 64 + odd_state.size());

  // LLM.int8: int8 weight + f32 SCB per output row + the 1-byte weight_format.
  CHECK(quantized_bytes(*find_quantizer("dmem.quantizer.bnb_int8"), weight(12288, 3072), true) ==
        12288ull * 3072 + 12288 * 4 + 1);

  // GGUF: whole blocks along the input dimension.
  CHECK(quantized_bytes(*find_quantizer("dmem.quantizer.gguf", "q4_k"), w, true) ==
        3072ull * 12 * 144);
  CHECK(quantized_bytes(*find_quantizer("dmem.quantizer.gguf", "q8_0"), w, true) ==
        3072ull * 96 * 34);
  CHECK(quantized_bytes(*find_quantizer("dmem.quantizer.gguf", "q6_k"), w, true) ==
        3072ull * 12 * 210);
  CHECK(quantized_bytes(*find_quantizer("dmem.quantizer.gguf", "q5_k"), w, true) ==
        3072ull * 12 * 176);
  CHECK(quantized_bytes(*find_quantizer("dmem.quantizer.gguf", "q4_0"), w, true) ==
        3072ull * 96 * 18);
  // A row that is not a whole number of k-blocks keeps its native dtype.
  const TensorInfo narrow = weight(64, 96);
  CHECK(quantized_bytes(*find_quantizer("dmem.quantizer.gguf", "q4_k"), narrow, true) ==
        narrow.nbytes);
  CHECK(quantized_bytes(*find_quantizer("dmem.quantizer.gguf", "q4_0"), narrow, true) ==
        64ull * 3 * 18);

  // fp8: one byte per element (cast), plus one f32 scale for the fp8 GEMM storage.
  CHECK(quantized_bytes(*find_quantizer("dmem.quantizer.fp8_cast", "e4m3"), w, true) == n);
  CHECK(quantized_bytes(*find_quantizer("dmem.quantizer.fp8", "e4m3"), w, true) == n + 4);
  CHECK(quantized_bytes(*find_quantizer("dmem.quantizer.fp8_cast", "e4m3"),
                        weight(8, 8, DType::f8_e4m3), true) == 64);

  // Tensors a quantizer leaves alone keep their bytes.
  for (const auto& c : builtin_quantizers()) CHECK(quantized_bytes(c, w, false) == w.nbytes);
}
