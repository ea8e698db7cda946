#include <catch2/catch.hpp>

#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "dmem/block_quant.hpp"
#include "support/test_support.hpp"

using namespace dmem;

namespace {
struct Golden {
  std::size_t count = 0;
  std::vector<std::uint8_t> input, output;
};

Golden load(const std::string& file, std::size_t in_bytes_per_value_num, std::size_t in_den,
            std::size_t out_num, std::size_t out_den) {
  auto bytes = test::read_file(std::string(DMEM_GOLDEN_DIR) + "/block_quant/" + file);
  Golden g;
  std::uint32_t n;
  std::memcpy(&n, bytes.data(), 4);
  g.count = n;
  const std::size_t in = n * in_bytes_per_value_num / in_den, out = n * out_num / out_den;
  REQUIRE(bytes.size() == 4 + in + out);
  g.input.assign(bytes.begin() + 4, bytes.begin() + 4 + static_cast<std::ptrdiff_t>(in));
  g.output.assign(bytes.begin() + 4 + static_cast<std::ptrdiff_t>(in), bytes.end());
  return g;
}
}  // namespace

TEST_CASE("dequantization matches gguf-py bit for bit", "[block_quant]") {
  for (const char* name : {"q4_0", "q4_1", "q5_0", "q5_1", "q8_0", "q2_k", "q3_k", "q4_k", "q5_k",
                           "q6_k", "iq4_nl", "mxfp4"}) {
    const DType t = *dtype_from_name(name);
    const auto& info = dtype_info(t);
    INFO(name);
    REQUIRE(can_dequantize(t));
    auto g = load(std::string(name) + ".dq", info.block_bytes, info.block_elems, 4, 1);
    std::vector<float> y(g.count);
    REQUIRE(dequantize(t, g.input.data(), y.data(), g.count).is_ok());
    std::vector<float> want(g.count);
    std::memcpy(want.data(), g.output.data(), g.output.size());
    std::size_t mismatches = 0;
    for (std::size_t i = 0; i < g.count; ++i)
      if (std::memcmp(&y[i], &want[i], 4) != 0 && !(y[i] == 0.0f && want[i] == 0.0f)) ++mismatches;
    CHECK(mismatches == 0);
  }
}

TEST_CASE("reference quantizers match gguf-py bit for bit", "[block_quant]") {
  for (const char* name : {"q4_0", "q4_1", "q5_0", "q5_1", "q8_0"}) {
    const DType t = *dtype_from_name(name);
    const auto& info = dtype_info(t);
    INFO(name);
    REQUIRE(can_quantize(t));
    auto g = load(std::string(name) + ".q", 4, 1, info.block_bytes, info.block_elems);
    std::vector<float> x(g.count);
    std::memcpy(x.data(), g.input.data(), g.input.size());
    std::vector<std::uint8_t> q(g.output.size());
    REQUIRE(quantize(t, x.data(), q.data(), g.count).is_ok());
    for (std::size_t b = 0; b < q.size() / info.block_bytes; ++b) {
      INFO("block " << b);
      CHECK(std::memcmp(q.data() + b * info.block_bytes, g.output.data() + b * info.block_bytes,
                        info.block_bytes) == 0);
    }
  }
}

TEST_CASE("quantize then dequantize stays within the block's step", "[block_quant]") {
  std::vector<float> x(256);
  for (std::size_t i = 0; i < x.size(); ++i) x[i] = std::sin(static_cast<float>(i) * 0.37f) * 3.0f;
  std::vector<std::uint8_t> q(34 * 8);
  REQUIRE(quantize(DType::q8_0, x.data(), q.data(), x.size()).is_ok());
  std::vector<float> y(x.size());
  REQUIRE(dequantize(DType::q8_0, q.data(), y.data(), y.size()).is_ok());
  for (std::size_t i = 0; i < x.size(); ++i) CHECK(std::fabs(y[i] - x[i]) <= 3.0f / 127.0f);
}

TEST_CASE("block (de)quantization rejects partial blocks and unknown types", "[block_quant]") {
  float x[40] = {};
  std::uint8_t q[64] = {};
  auto st = quantize(DType::q8_0, x, q, 40);
  CHECK(st.code() == Errc::invalid_argument);
  CHECK(st.message().find("whole number") != std::string::npos);
  CHECK(quantize(DType::q4_k, x, q, 0).code() == Errc::unsupported);
  CHECK(dequantize(DType::iq2_xxs, q, x, 0).code() == Errc::unsupported);
  CHECK(dequantize(DType::bf16, q, x, 0).code() == Errc::unsupported);
}
