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
  // Documented quality order (docs/planner.md, "Quality tiers"): native > int8 ≈ q8_0 > fp8
  // weight-only > q6_k ≈ fp8 GEMM ≈ fp8 e5m2 > q5_k > nf4 ≈ q4_k > q4_0.
  auto rank = [](const char* id, const char* variant) {
    return quality_rank(find_quantizer(id, variant)->quality);
  };
  CHECK(quality_rank(QualityTier::native) == 0);
  CHECK(0 < rank("dmem.quantizer.gguf", "q8_0"));
  CHECK(rank("dmem.quantizer.bnb_int8", "int8") == rank("dmem.quantizer.gguf", "q8_0"));
  // Q8_0 is at least as good as weight-only fp8, which ranks above the fp8 GEMM.
  CHECK(rank("dmem.quantizer.gguf", "q8_0") <= rank("dmem.quantizer.fp8_cast", "e4m3"));
  CHECK(rank("dmem.quantizer.fp8_cast", "e4m3") < rank("dmem.quantizer.fp8", "e4m3"));
  CHECK(rank("dmem.quantizer.fp8_cast", "e4m3") < rank("dmem.quantizer.fp8_cast", "e5m2"));
  CHECK(rank("dmem.quantizer.fp8_cast", "e4m3") < rank("dmem.quantizer.gguf", "q6_k"));
  CHECK(rank("dmem.quantizer.gguf", "q6_k") < rank("dmem.quantizer.gguf", "q5_k"));
  CHECK(rank("dmem.quantizer.fp8", "e4m3") < rank("dmem.quantizer.gguf", "q5_k"));
  CHECK(rank("dmem.quantizer.gguf", "q5_k") < rank("dmem.quantizer.nf4", "nf4"));
  CHECK(rank("dmem.quantizer.nf4", "nf4") == rank("dmem.quantizer.gguf", "q4_k"));
  CHECK(rank("dmem.quantizer.nf4", "nf4-dq") == rank("dmem.quantizer.gguf", "q4_k"));
  CHECK(rank("dmem.quantizer.gguf", "q4_k") < rank("dmem.quantizer.gguf", "q4_0"));
  CHECK(quality_rank(QualityTier::q4_low) < quality_rank(QualityTier::q3));
  CHECK(quality_rank(QualityTier::q3) < quality_rank(QualityTier::q2));
  // The plugin ABI's values 0..8 keep their identity: a plugin saying INT8 is ranked as int8.
  CHECK(static_cast<int>(QualityTier::fp8) == 1);
  CHECK(static_cast<int>(QualityTier::int8) == 2);
  CHECK(static_cast<int>(QualityTier::q2) == 8);
  CHECK(quality_name(QualityTier::fp8_gemm) == "fp8_gemm");
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

  // A 16-bit downcast halves fp32 weights and leaves 16-bit ones alone; its quality is native.
  const QuantizerCaps* bf16 = find_quantizer("dmem.quantizer.cast16", "bf16");
  REQUIRE(bf16 != nullptr);
  CHECK(bf16->is_cast);
  CHECK(quality_rank(bf16->quality) == 0);
  CHECK(quantized_bytes(*bf16, weight(3072, 3072, DType::f32), true) == n * 2);
  CHECK(quantized_bytes(*bf16, w, true) == w.nbytes);
  CHECK(quantized_bytes(*bf16, weight(3072, 3072, DType::f32), false) == n * 4);

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
