// Casts against PyTorch's CPU casts bit for bit (tests/golden/dtype/torch_*.bin, made by
// scripts/golden/dtype_torch.py), NaN patterns included, through the scalar functions and through
// convert() on every CPU path.
#include <catch2/catch.hpp>

#include <bit>
#include <cstring>
#include <string>
#include <vector>

#include "core/cpu_features.hpp"
#include "dmem/dtype.hpp"
#include "support/test_support.hpp"

using namespace dmem;

namespace {
std::vector<std::uint8_t> golden(const std::string& name) {
  return test::read_file(std::string(DMEM_GOLDEN_DIR) + "/dtype/" + name);
}

std::uint32_t u32_at(const std::vector<std::uint8_t>& b, std::size_t off) {
  std::uint32_t v;
  std::memcpy(&v, b.data() + off, 4);
  return v;
}

struct PathGuard {
  explicit PathGuard(detail::CpuPath p) { detail::set_cpu_path_override(p); }
  ~PathGuard() { detail::set_cpu_path_override(std::nullopt); }
  PathGuard(const PathGuard&) = delete;
  PathGuard& operator=(const PathGuard&) = delete;
};

constexpr detail::CpuPath kPaths[] = {detail::CpuPath::scalar, detail::CpuPath::avx2};

// Converts `codes` (of type `from`) to f32 with convert() on every path; each result must equal
// `want` bit for bit.
void check_widen(DType from, const std::vector<std::uint8_t>& codes,
                 const std::vector<std::uint32_t>& want) {
  for (auto path : kPaths) {
    PathGuard guard(path);
    INFO(dtype_name(from) << " on path " << static_cast<int>(detail::cpu_path()));
    std::vector<std::uint32_t> got(want.size());
    REQUIRE(convert(from, codes.data(), DType::f32, got.data(), want.size()).is_ok());
    std::size_t bad = 0;
    for (std::size_t i = 0; i < want.size(); ++i) {
      if (got[i] != want[i] && bad++ < 5) {
        INFO("element " << i << " got 0x" << std::hex << got[i] << " want 0x" << want[i]);
        CHECK(got[i] == want[i]);
      }
    }
    CHECK(bad == 0);
  }
}
}  // namespace

TEST_CASE("f16 -> f32: every code matches PyTorch, NaN payloads kept", "[dtype]") {
  const auto g = golden("torch_widen_f16.bin");
  REQUIRE(g.size() == 65536 * 4);
  std::vector<std::uint8_t> codes(65536 * 2);
  std::vector<std::uint32_t> want(65536);
  for (std::uint32_t c = 0; c < 65536; ++c) {
    const auto h = static_cast<std::uint16_t>(c);
    std::memcpy(codes.data() + 2 * c, &h, 2);
    want[c] = u32_at(g, 4 * c);
    INFO("code 0x" << std::hex << c);
    REQUIRE(std::bit_cast<std::uint32_t>(f16_to_f32(h)) == want[c]);
  }
  CHECK(want[0x7C01] == 0x7FC02000u);  // the payload survives, quieted (as x86 F16C)
  check_widen(DType::f16, codes, want);
}

TEST_CASE("bf16 -> f32 matches PyTorch, NaN payloads kept", "[dtype]") {
  const auto g = golden("torch_widen_bf16.bin");
  REQUIRE(g.size() % 8 == 0);
  const std::size_t n = g.size() / 8;
  REQUIRE(n > 4000);
  std::vector<std::uint8_t> codes(n * 2);
  std::vector<std::uint32_t> want(n);
  for (std::size_t i = 0; i < n; ++i) {
    const auto h = static_cast<std::uint16_t>(u32_at(g, 8 * i));
    std::memcpy(codes.data() + 2 * i, &h, 2);
    want[i] = u32_at(g, 8 * i + 4);
    INFO("code 0x" << std::hex << h);
    REQUIRE(std::bit_cast<std::uint32_t>(bf16_to_f32(h)) == want[i]);
  }
  check_widen(DType::bf16, codes, want);
}

TEST_CASE("fp8 -> f32: all 256 codes of e4m3fn and e5m2 match PyTorch", "[dtype]") {
  for (DType t : {DType::f8_e4m3, DType::f8_e5m2}) {
    const auto g = golden(t == DType::f8_e4m3 ? "torch_widen_e4m3.bin" : "torch_widen_e5m2.bin");
    REQUIRE(g.size() == 256 * 4);
    // Several copies, so the vector loop and its tail both run.
    std::vector<std::uint8_t> codes;
    std::vector<std::uint32_t> want;
    for (int rep = 0; rep < 3; ++rep) {
      for (unsigned c = 0; c < 256; ++c) {
        codes.push_back(static_cast<std::uint8_t>(c));
        want.push_back(u32_at(g, 4 * c));
      }
    }
    codes.push_back(0x7F);
    want.push_back(u32_at(g, 4 * 0x7F));
    for (unsigned c = 0; c < 256; ++c) {
      const auto b = static_cast<std::uint8_t>(c);
      const float f = t == DType::f8_e4m3 ? f8_e4m3_to_f32(b) : f8_e5m2_to_f32(b);
      INFO(dtype_name(t) << " code 0x" << std::hex << c);
      REQUIRE(std::bit_cast<std::uint32_t>(f) == want[c]);
    }
    check_widen(t, codes, want);
  }
}

TEST_CASE("f32 -> f16 / bf16 / fp8 match PyTorch bit for bit, NaN and overflow included",
          "[dtype]") {
  const auto g = golden("torch_narrow.bin");
  REQUIRE(g.size() % 10 == 0);
  const std::size_t n = g.size() / 10;
  REQUIRE(n > 10000);
  std::vector<float> x(n);
  std::vector<std::uint16_t> f16(n), bf16(n);
  std::vector<std::uint8_t> e4(n), e5(n);
  for (std::size_t i = 0; i < n; ++i) {
    const auto* p = g.data() + 10 * i;
    std::memcpy(&x[i], p, 4);
    std::memcpy(&f16[i], p + 4, 2);
    std::memcpy(&bf16[i], p + 6, 2);
    e4[i] = p[8];
    e5[i] = p[9];
    INFO("input bits 0x" << std::hex << std::bit_cast<std::uint32_t>(x[i]));
    CHECK(f32_to_f16(x[i]) == f16[i]);
    CHECK(f32_to_bf16(x[i]) == bf16[i]);
    CHECK(f32_to_f8_e4m3(x[i]) == e4[i]);
    CHECK(f32_to_f8_e5m2(x[i]) == e5[i]);
  }
  for (auto path : kPaths) {
    PathGuard guard(path);
    INFO("path " << static_cast<int>(detail::cpu_path()));
    std::vector<std::uint16_t> h(n), b(n);
    std::vector<std::uint8_t> q4(n), q5(n);
    REQUIRE(convert(DType::f32, x.data(), DType::f16, h.data(), n).is_ok());
    REQUIRE(convert(DType::f32, x.data(), DType::bf16, b.data(), n).is_ok());
    REQUIRE(convert(DType::f32, x.data(), DType::f8_e4m3, q4.data(), n).is_ok());
    REQUIRE(convert(DType::f32, x.data(), DType::f8_e5m2, q5.data(), n).is_ok());
    CHECK(h == f16);
    CHECK(b == bf16);
    CHECK(q4 == e4);
    CHECK(q5 == e5);
  }
}

TEST_CASE("fp8 edges as PyTorch: e4m3fn overflow saturates, e5m2 overflow is infinity", "[dtype]") {
  CHECK(f32_to_f8_e4m3(448.0f) == 0x7E);
  CHECK(f32_to_f8_e4m3(464.0f) == 0x7E);  // tie to even
  CHECK(f32_to_f8_e4m3(465.0f) == 0x7E);  // would round to 480 (the NaN code): saturates
  CHECK(f32_to_f8_e4m3(480.0f) == 0x7E);
  CHECK(f32_to_f8_e4m3(-INFINITY) == 0xFE);
  CHECK(f32_to_f8_e4m3(-NAN) == 0xFF);
  CHECK(f32_to_f8_e5m2(57344.0f) == 0x7B);
  CHECK(f32_to_f8_e5m2(61440.0f) == 0x7C);  // tie to even rounds up to infinity
  CHECK(f32_to_f8_e5m2(-INFINITY) == 0xFC);
  CHECK(f32_to_bf16(std::bit_cast<float>(0xFFC12345u)) == 0xFFFF);  // torch's NaN
  CHECK(f32_to_f16(std::bit_cast<float>(0x7FA00000u)) == 0x7F00);   // payload kept, quieted
}
