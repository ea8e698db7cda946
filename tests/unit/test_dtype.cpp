#include <catch2/catch.hpp>

#include <bit>
#include <cmath>
#include <cstring>
#include <vector>

#include "dmem/dtype.hpp"
#include "support/test_support.hpp"

using namespace dmem;

namespace {
struct CastRecord {
  std::uint32_t f32;
  std::uint16_t f16, bf16;
  std::uint8_t e4m3, e5m2;
};

std::vector<CastRecord> load_golden() {
  auto bytes = test::read_file(std::string(DMEM_GOLDEN_DIR) + "/dtype/f32_casts.bin");
  REQUIRE(bytes.size() % 10 == 0);
  std::vector<CastRecord> out(bytes.size() / 10);
  for (std::size_t i = 0; i < out.size(); ++i) {
    const auto* p = bytes.data() + i * 10;
    std::memcpy(&out[i].f32, p, 4);
    std::memcpy(&out[i].f16, p + 4, 2);
    std::memcpy(&out[i].bf16, p + 6, 2);
    out[i].e4m3 = p[8];
    out[i].e5m2 = p[9];
  }
  return out;
}
}  // namespace

TEST_CASE("f32 casts match numpy and ml_dtypes bit for bit", "[dtype]") {
  // ml_dtypes turns e4m3fn overflow into NaN; PyTorch (our reference, test_dtype_torch.cpp)
  // saturates it to 448, so those records are checked there instead.
  const auto golden = load_golden();
  REQUIRE(golden.size() > 10000);
  std::size_t checked = 0;
  for (const auto& r : golden) {
    const float x = std::bit_cast<float>(r.f32);
    INFO("input bits 0x" << std::hex << r.f32 << " value " << x);
    if (std::isnan(x)) {
      // Any NaN pattern is a NaN; PyTorch and ml_dtypes differ only in which one.
      CHECK(std::isnan(f16_to_f32(f32_to_f16(x))));
      CHECK(std::isnan(bf16_to_f32(f32_to_bf16(x))));
      CHECK(std::isnan(f8_e4m3_to_f32(f32_to_f8_e4m3(x))));
      CHECK(std::isnan(f8_e5m2_to_f32(f32_to_f8_e5m2(x))));
      continue;
    }
    CHECK(f32_to_f16(x) == r.f16);
    CHECK(f32_to_bf16(x) == r.bf16);
    if (!(std::fabs(x) > 464.0f)) CHECK(f32_to_f8_e4m3(x) == r.e4m3);
    CHECK(f32_to_f8_e5m2(x) == r.e5m2);
    ++checked;
  }
  CHECK(checked > 10000);
}

TEST_CASE("fp8 e4m3 follows PyTorch's cast at the edges", "[dtype]") {
  CHECK(f32_to_f8_e4m3(448.0f) == 0x7E);
  CHECK(f32_to_f8_e4m3(464.0f) == 0x7E);   // tie to even
  CHECK(f32_to_f8_e4m3(464.01f) == 0x7E);  // overflow saturates (no infinity in e4m3fn)
  CHECK(f32_to_f8_e4m3(500.0f) == 0x7E);
  CHECK(f32_to_f8_e4m3(-500.0f) == 0xFE);
  CHECK(f32_to_f8_e4m3(NAN) == 0x7F);
  CHECK(f32_to_f8_e4m3(std::ldexp(1.0f, -10)) == 0x00);  // tie to even (zero)
  CHECK(f32_to_f8_e4m3(0.75f * std::ldexp(1.0f, -9)) == 0x01);
  CHECK(f8_e4m3_to_f32(0x7E) == 448.0f);
  CHECK(f8_e4m3_to_f32(0x08) == std::ldexp(1.0f, -6));
  CHECK(f8_e4m3_to_f32(0x01) == std::ldexp(1.0f, -9));
  CHECK(std::isnan(f8_e4m3_to_f32(0x7F)));
  CHECK(std::isnan(f8_e4m3_to_f32(0xFF)));
}

TEST_CASE("fp8 e5m2 overflows to infinity", "[dtype]") {
  CHECK(f32_to_f8_e5m2(57344.0f) == 0x7B);
  CHECK(f32_to_f8_e5m2(61440.0f) == 0x7C);
  CHECK(f32_to_f8_e5m2(1e9f) == 0x7C);
  CHECK(f32_to_f8_e5m2(-INFINITY) == 0xFC);
  CHECK(std::isinf(f8_e5m2_to_f32(0x7C)));
  CHECK(f8_e5m2_to_f32(0x01) == std::ldexp(1.0f, -16));
}

TEST_CASE("every finite narrow code survives decode then encode", "[dtype]") {
  for (unsigned c = 0; c < 256; ++c) {
    const auto b = static_cast<std::uint8_t>(c);
    const float e4 = f8_e4m3_to_f32(b);
    if (!std::isnan(e4)) CHECK(f32_to_f8_e4m3(e4) == (e4 == 0.0f && std::signbit(e4) ? 0x80 : b));
    const float e5 = f8_e5m2_to_f32(b);
    if (!std::isnan(e5)) CHECK(f32_to_f8_e5m2(e5) == b);
  }
  for (unsigned c = 0; c < 65536; ++c) {
    const auto h = static_cast<std::uint16_t>(c);
    const float f = f16_to_f32(h);
    if (!std::isnan(f)) REQUIRE(f32_to_f16(f) == h);
    const float g = bf16_to_f32(h);
    if (!std::isnan(g)) REQUIRE(f32_to_bf16(g) == h);
  }
}

TEST_CASE("dtype table: names, ids and exact block sizes", "[dtype]") {
  CHECK(dtype_from_safetensors("BF16") == DType::bf16);
  CHECK(dtype_from_safetensors("F8_E4M3") == DType::f8_e4m3);
  CHECK(dtype_from_safetensors("F8_E5M2") == DType::f8_e5m2);
  CHECK(dtype_from_safetensors("F4") == DType::f4);
  CHECK_FALSE(dtype_from_safetensors("bf16").has_value());  // the format is case-sensitive
  CHECK_FALSE(dtype_from_safetensors("Q4_K").has_value());
  CHECK(dtype_from_name("bfloat16") == DType::bf16);
  CHECK(dtype_from_name("Q4_K") == DType::q4_k);
  CHECK(dtype_from_ggml(12) == DType::q4_k);
  CHECK(dtype_from_ggml(30) == DType::bf16);
  CHECK_FALSE(dtype_from_ggml(4).has_value());   // Q4_2: removed
  CHECK_FALSE(dtype_from_ggml(31).has_value());  // Q4_0_4_4: removed
  CHECK_FALSE(dtype_from_ggml(-1).has_value());
  // FORMATS.md §2.5
  CHECK(dtype_bytes(DType::q4_0, 32) == 18u);
  CHECK(dtype_bytes(DType::q8_0, 64) == 68u);
  CHECK(dtype_bytes(DType::q4_k, 512) == 288u);
  CHECK(dtype_bytes(DType::q6_k, 256) == 210u);
  CHECK(dtype_bytes(DType::q5_k, 256) == 176u);
  CHECK(dtype_bytes(DType::mxfp4, 32) == 17u);
  CHECK_FALSE(dtype_bytes(DType::q4_k, 100).has_value());
  CHECK(dtype_bytes(DType::f4, 4) == 2u);
  CHECK_FALSE(dtype_bytes(DType::f4, 3).has_value());  // whole bytes only
  CHECK(dtype_bytes(DType::f6_e2m3, 4) == 3u);
  CHECK_FALSE(dtype_bytes(DType::f6_e3m2, 6).has_value());
  CHECK_FALSE(dtype_bytes(DType::f64, ~0ull / 2).has_value());  // overflow
  for (std::size_t i = 0; i < kDTypeCount; ++i) {
    const auto t = static_cast<DType>(i);
    CHECK(dtype_from_name(dtype_name(t)) == t);
  }
}

TEST_CASE("convert goes through f32 with one rounding and saturates integers", "[dtype]") {
  const float in[] = {1.0f, -2.5f, 300.0f, 1e10f, NAN};
  std::uint16_t bf[5];
  REQUIRE(convert(DType::f32, in, DType::bf16, bf, 5).is_ok());
  CHECK(bf16_to_f32(bf[1]) == -2.5f);
  std::uint8_t e4[5];
  REQUIRE(convert(DType::bf16, bf, DType::f8_e4m3, e4, 5).is_ok());
  CHECK(f8_e4m3_to_f32(e4[0]) == 1.0f);
  CHECK(f8_e4m3_to_f32(e4[2]) == 288.0f);
  CHECK(e4[3] == 0x7E);  // saturated, as PyTorch
  std::int8_t i8[5];
  REQUIRE(convert(DType::f32, in, DType::i8, i8, 5).is_ok());
  CHECK(i8[0] == 1);
  CHECK(i8[1] == -2);  // round half to even
  CHECK(i8[2] == 127);
  CHECK(i8[4] == 0);
  std::uint8_t q[144];
  auto st = convert(DType::f32, in, DType::q4_k, q, 1);
  CHECK(st.code() == Errc::unsupported);
  CHECK_FALSE(st.hint().empty());
  // Block types round-trip through ggml's reference quantizer.
  float block[32];
  for (int i = 0; i < 32; ++i) block[i] = static_cast<float>(i - 16);
  REQUIRE(convert(DType::f32, block, DType::q8_0, q, 32).is_ok());
  std::uint16_t back[32];
  REQUIRE(convert(DType::q8_0, q, DType::bf16, back, 32).is_ok());
  CHECK(bf16_to_f32(back[0]) == Approx(-16.0f).margin(16.0f / 127.0f));
  CHECK(convert(DType::f32, block, DType::q8_0, q, 31).code() == Errc::invalid_argument);
}
