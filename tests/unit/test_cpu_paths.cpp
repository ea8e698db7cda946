// The scalar and AVX2 paths of the conversion and dequantization kernels give the same bits, on
// random and edge inputs, odd lengths and unaligned buffers. On a CPU without AVX2 both runs
// take the scalar path and the comparison is trivially true.
#include <catch2/catch.hpp>

#include <bit>
#include <cmath>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "core/convert_kernels.hpp"
#include "core/cpu_features.hpp"
#include "dmem/block_quant.hpp"
#include "dmem/dtype.hpp"
#include "support/test_support.hpp"

using namespace dmem;

namespace {
struct PathGuard {
  explicit PathGuard(detail::CpuPath p) { detail::set_cpu_path_override(p); }
  ~PathGuard() { detail::set_cpu_path_override(std::nullopt); }
  PathGuard(const PathGuard&) = delete;
  PathGuard& operator=(const PathGuard&) = delete;
};

std::vector<std::uint8_t> random_bytes(std::size_t n, std::uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<std::uint8_t> v(n);
  for (auto& b : v) b = static_cast<std::uint8_t>(rng());
  return v;
}

// Runs convert() on both paths from an offset of 1 byte (unaligned) and compares the outputs.
void compare_paths(DType from, DType to, const std::vector<std::uint8_t>& src, std::size_t count) {
  const std::size_t out_bytes = count * dtype_info(to).block_bytes;
  std::vector<std::uint8_t> in(src.size() + 1), a(out_bytes + 1, 0xAA), b(out_bytes + 1, 0x55);
  std::memcpy(in.data() + 1, src.data(), src.size());
  {
    PathGuard g(detail::CpuPath::scalar);
    REQUIRE(convert(from, in.data() + 1, to, a.data() + 1, count).is_ok());
  }
  {
    PathGuard g(detail::CpuPath::avx2);
    REQUIRE(convert(from, in.data() + 1, to, b.data() + 1, count).is_ok());
  }
  INFO(dtype_name(from) << " -> " << dtype_name(to) << ", " << count << " values");
  CHECK(std::memcmp(a.data() + 1, b.data() + 1, out_bytes) == 0);
}
}  // namespace

TEST_CASE("DMEM_CPU_FEATURES values", "[dtype]") {
  CHECK(detail::parse_cpu_features("scalar") == detail::CpuPath::scalar);
  CHECK(detail::parse_cpu_features("") == detail::detected_cpu_path());
  CHECK(detail::parse_cpu_features("auto") == detail::detected_cpu_path());
  CHECK(detail::parse_cpu_features("avx2") == detail::detected_cpu_path());
  CHECK_FALSE(detail::parse_cpu_features("sse9").has_value());
  {
    PathGuard g(detail::CpuPath::scalar);
    CHECK(detail::cpu_path() == detail::CpuPath::scalar);
  }
  {
    PathGuard g(detail::CpuPath::avx2);
    CHECK(detail::cpu_path() == detail::detected_cpu_path());  // never more than the CPU has
  }
}

TEST_CASE("conversion kernels: scalar and AVX2 paths give the same bits", "[dtype]") {
  // Every 16-bit pattern (NaN payloads, subnormals, infinities) and random f32 bit patterns
  // (with every f16 / bf16 rounding case), in lengths that exercise the vector tails.
  std::vector<std::uint8_t> all16(65536 * 2);
  for (std::uint32_t c = 0; c < 65536; ++c) {
    const auto h = static_cast<std::uint16_t>(c);
    std::memcpy(all16.data() + 2 * c, &h, 2);
  }
  auto f32 = random_bytes(4 * 70001, 1);
  // Edge values at the front: ties, overflow, NaNs with payloads, zeros.
  const std::uint32_t edges[] = {0x00000000, 0x80000000, 0x7F800000, 0xFF800000, 0x7F800001,
                                 0xFFC12345, 0x7FBFFFFF, 0x477FF000, 0x477FEFFF, 0x33000000,
                                 0x33000001, 0x387FFFFF, 0x3F808000, 0x3F818000, 0x7F7FFFFF};
  std::memcpy(f32.data(), edges, sizeof edges);
  std::vector<std::uint8_t> bytes(256 * 3);
  for (std::size_t i = 0; i < bytes.size(); ++i) bytes[i] = static_cast<std::uint8_t>(i * 7);
  for (std::size_t n : {std::size_t{0}, std::size_t{1}, std::size_t{15}, std::size_t{16},
                        std::size_t{17}, std::size_t{33}, std::size_t{65536}}) {
    compare_paths(DType::f16, DType::f32, all16, n);
    compare_paths(DType::bf16, DType::f32, all16, n);
    compare_paths(DType::f32, DType::f16, f32, n);
    compare_paths(DType::f32, DType::bf16, f32, n);
    compare_paths(DType::bf16, DType::f16, all16, n);
    compare_paths(DType::f16, DType::f8_e4m3, all16, n);
    compare_paths(DType::bf16, DType::f8_e4m3, all16, n);
    compare_paths(DType::f32, DType::f8_e4m3, f32, n);
    if (n <= bytes.size()) {
      compare_paths(DType::f8_e4m3, DType::f32, bytes, n);
      compare_paths(DType::f8_e5m2, DType::f32, bytes, n);
      compare_paths(DType::f8_e5m2, DType::bf16, bytes, n);
    }
  }
  compare_paths(DType::f32, DType::f16, f32, 70001);
  compare_paths(DType::f32, DType::bf16, f32, 70001);
}

TEST_CASE("fp8 e4m3 kernels give the scalar cast's bits around every rounding boundary",
          "[dtype]") {
  // Values where e4m3 rounding is decided: every e4m3 code's value and the midpoints to its
  // neighbours, one f32 ulp either side of each, the saturation band 448-480 and beyond.
  std::vector<float> values;
  for (std::uint32_t c = 0; c < 0x7F; ++c) {
    const float v = f8_e4m3_to_f32(static_cast<std::uint8_t>(c));
    const float next = f8_e4m3_to_f32(static_cast<std::uint8_t>(c + 1));
    const float mid = v + (next - v) / 2;
    for (float x : {v, mid}) {
      for (float y : {x, std::nextafter(x, 0.0f), std::nextafter(x, 1e9f)}) {
        values.push_back(y);
        values.push_back(-y);
      }
    }
  }
  for (float x : {448.0f, 463.99997f, 464.0f, 464.00003f, 479.99997f, 480.0f, 1e6f, 3.4e38f, 1e-45f,
                  1e-38f, 0.0f})
    values.push_back(x);
  std::mt19937 rng(3);
  std::uniform_real_distribution<float> wide(-600.0f, 600.0f), narrow(-0.02f, 0.02f);
  for (int i = 0; i < 20000; ++i) {
    values.push_back(wide(rng));
    values.push_back(narrow(rng));
  }
  values.push_back(std::bit_cast<float>(0x7FC00001u));
  values.push_back(std::bit_cast<float>(0xFF800000u));
  std::vector<std::uint8_t> bytes(values.size() * 4);
  std::memcpy(bytes.data(), values.data(), bytes.size());
  compare_paths(DType::f32, DType::f8_e4m3, bytes, values.size());

  // An oracle that shares nothing with the kernels: the nearest of the 127 finite codes by
  // brute force, ties to the even code (the even mantissa), saturating at 448 as PyTorch does.
  const auto nearest = [](float x) -> std::uint8_t {
    const std::uint8_t sign = std::signbit(x) ? 0x80 : 0x00;
    if (std::isnan(x)) return static_cast<std::uint8_t>(sign | 0x7F);
    const double a = std::fabs(static_cast<double>(x));
    if (a >= 448.0) return static_cast<std::uint8_t>(sign | 0x7E);
    std::uint8_t best = 0;
    double best_d = 1e300;
    for (std::uint8_t c = 0; c <= 0x7E; ++c) {
      const double d = std::fabs(a - static_cast<double>(f8_e4m3_to_f32(c)));
      if (d < best_d || (d == best_d && (c & 1) == 0)) {
        best = c;
        best_d = d;
      }
    }
    return static_cast<std::uint8_t>(sign | best);
  };
  std::vector<std::uint8_t> scalar(values.size()), vector(values.size());
  {
    PathGuard g(detail::CpuPath::scalar);
    REQUIRE(convert(DType::f32, values.data(), DType::f8_e4m3, scalar.data(), values.size()));
  }
  {
    PathGuard g(detail::CpuPath::avx2);
    REQUIRE(convert(DType::f32, values.data(), DType::f8_e4m3, vector.data(), values.size()));
  }
  for (std::size_t i = 0; i < values.size(); ++i) {
    INFO("value " << values[i] << " bits 0x" << std::hex
                  << std::bit_cast<std::uint32_t>(values[i]));
    const std::uint8_t want = nearest(values[i]);
    REQUIRE(int{scalar[i]} == int{want});
    REQUIRE(int{vector[i]} == int{want});
  }
}

TEST_CASE("f32 -> fp8 e5m2 gives the nearest code around every rounding boundary", "[dtype]") {
  std::vector<float> values;
  for (std::uint32_t c = 0; c < 0x7C; ++c) {
    const float v = f8_e5m2_to_f32(static_cast<std::uint8_t>(c));
    const float next = c + 1 < 0x7C ? f8_e5m2_to_f32(static_cast<std::uint8_t>(c + 1)) : 65536.0f;
    for (float x : {v, v + (next - v) / 2}) {
      for (float y : {x, std::nextafter(x, 0.0f), std::nextafter(x, 1e9f)}) {
        values.push_back(y);
        values.push_back(-y);
      }
    }
  }
  std::mt19937 rng(4);
  std::uniform_real_distribution<float> wide(-70000.0f, 70000.0f), narrow(-1e-4f, 1e-4f);
  for (int i = 0; i < 20000; ++i) {
    values.push_back(wide(rng));
    values.push_back(narrow(rng));
  }
  values.push_back(std::bit_cast<float>(0x7F800000u));
  values.push_back(std::bit_cast<float>(0xFFC00001u));
  // Oracle: the nearest finite code, ties to even; from 61440 (halfway to 2^16) infinity.
  const auto nearest = [](float x) -> std::uint8_t {
    const std::uint8_t sign = std::signbit(x) ? 0x80 : 0x00;
    if (std::isnan(x)) return static_cast<std::uint8_t>(sign | 0x7F);
    const double a = std::fabs(static_cast<double>(x));
    if (a >= 61440.0) return static_cast<std::uint8_t>(sign | 0x7C);
    std::uint8_t best = 0;
    double best_d = 1e300;
    for (std::uint8_t c = 0; c < 0x7C; ++c) {
      const double d = std::fabs(a - static_cast<double>(f8_e5m2_to_f32(c)));
      if (d < best_d || (d == best_d && (c & 1) == 0)) {
        best = c;
        best_d = d;
      }
    }
    return static_cast<std::uint8_t>(sign | best);
  };
  std::vector<std::uint8_t> out(values.size());
  REQUIRE(convert(DType::f32, values.data(), DType::f8_e5m2, out.data(), values.size()));
  for (std::size_t i = 0; i < values.size(); ++i) {
    INFO("value " << values[i] << " bits 0x" << std::hex
                  << std::bit_cast<std::uint32_t>(values[i]));
    REQUIRE(int{out[i]} == int{nearest(values[i])});
  }
}

TEST_CASE("conversion kernels agree with the scalar functions", "[dtype]") {
  const auto* avx2 = detail::convert_kernels_avx2();
  if (!avx2 || detail::detected_cpu_path() != detail::CpuPath::avx2) return;
  const auto f32 = random_bytes(4 * 4099, 2);
  std::vector<std::uint16_t> h(4099), b(4099);
  avx2->f32_to_f16(f32.data(), h.data(), 4099);
  avx2->f32_to_bf16(f32.data(), b.data(), 4099);
  for (std::size_t i = 0; i < 4099; ++i) {
    float x;
    std::memcpy(&x, f32.data() + 4 * i, 4);
    INFO("bits 0x" << std::hex << std::bit_cast<std::uint32_t>(x));
    REQUIRE(h[i] == f32_to_f16(x));
    REQUIRE(b[i] == f32_to_bf16(x));
  }
}

TEST_CASE("dequantization: scalar and AVX2 paths give the same bits", "[block_quant]") {
  for (DType t : {DType::q8_0, DType::q4_0, DType::q4_k, DType::q5_k, DType::q6_k, DType::q4_1,
                  DType::q2_k}) {
    const auto& info = dtype_info(t);
    INFO(info.name);
    const std::size_t blocks = 37;
    // Random bytes: the f16 scales take every kind of value, NaNs and infinities included.
    const auto packed = random_bytes(blocks * info.block_bytes, 3 + static_cast<unsigned>(t));
    std::vector<float> a(blocks * info.block_elems), b(a.size());
    {
      PathGuard g(detail::CpuPath::scalar);
      REQUIRE(dequantize(t, packed.data(), a.data(), a.size()).is_ok());
    }
    {
      PathGuard g(detail::CpuPath::avx2);
      REQUIRE(dequantize(t, packed.data(), b.data(), b.size()).is_ok());
    }
    CHECK(std::memcmp(a.data(), b.data(), a.size() * 4) == 0);
  }
}

TEST_CASE("dequantization keeps an f16 NaN scale's payload, as gguf-py", "[block_quant]") {
  // A q8_0 block whose scale is a signalling NaN with a payload: every value is that NaN,
  // quieted (0x7FC02000 from f16 0x7C01), on every path.
  std::uint8_t block[34];
  const std::uint16_t nan = 0x7C01;
  std::memcpy(block, &nan, 2);
  for (int j = 0; j < 32; ++j) block[2 + j] = static_cast<std::uint8_t>(j * 5 + 1);
  for (auto path : {detail::CpuPath::scalar, detail::CpuPath::avx2}) {
    PathGuard g(path);
    float y[32];
    REQUIRE(dequantize(DType::q8_0, block, y, 32).is_ok());
    for (float v : y) CHECK(std::bit_cast<std::uint32_t>(v) == 0x7FC02000u);
  }
  // Golden files made by gguf-py with NaN-payload, infinite and subnormal scales.
  for (const char* name : {"q8_0", "q4_0", "q4_k", "q5_k", "q6_k"}) {
    const DType t = *dtype_from_name(name);
    const auto& info = dtype_info(t);
    INFO(name);
    const auto bytes =
        test::read_file(std::string(DMEM_GOLDEN_DIR) + "/block_quant/" + name + "_nan.dq");
    std::uint32_t n;
    std::memcpy(&n, bytes.data(), 4);
    const std::size_t in = n / info.block_elems * info.block_bytes;
    REQUIRE(bytes.size() == 4 + in + 4 * std::size_t{n});
    for (auto path : {detail::CpuPath::scalar, detail::CpuPath::avx2}) {
      PathGuard g(path);
      std::vector<float> y(n);
      REQUIRE(dequantize(t, bytes.data() + 4, y.data(), n).is_ok());
      CHECK(std::memcmp(y.data(), bytes.data() + 4 + in, 4 * std::size_t{n}) == 0);
    }
  }
}
