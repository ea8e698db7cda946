// The stock fp8 storage plugin (plugins/fp8_cast), loaded by path: its casts equal PyTorch 2.15's
// bit for bit (tests/golden/dtype/torch_narrow.bin, the goldens of dmem's core conversions), NaN
// and overflow included; stored bytes, scales, linear bound and refusals.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "dmem/plugin_registry.hpp"
#include "fp8_cast/fp8_codec.hpp"
#include "support/quantizer_instance.hpp"
#include "support/test_support.hpp"

#if defined(DMEM_TEST_PLUGIN_FP8_CAST)

using dmem::test::abi_tensor;
using dmem::test::QuantizerInstance;

TEST_CASE("fp8_cast: f32 -> e4m3 / e5m2 equals torch's casts bit for bit", "[fp8_cast]") {
  // Records: f32 bits u32 | f16 u16 | bf16 u16 | e4m3fn u8 | e5m2 u8
  // (scripts/golden/dtype_torch.py).
  const auto rec = dmem::test::read_file(std::string(DMEM_GOLDEN_DIR) + "/dtype/torch_narrow.bin");
  REQUIRE(rec.size() % 10 == 0);
  REQUIRE(rec.size() > 1000);
  std::size_t bad4 = 0, bad5 = 0;
  for (std::size_t i = 0; i < rec.size(); i += 10) {
    std::uint32_t u = 0;
    std::memcpy(&u, rec.data() + i, 4);
    const float v = std::bit_cast<float>(u);
    bad4 += dmem_fp8::encode(dmem_fp8::Format::e4m3, v) != rec[i + 8];
    bad5 += dmem_fp8::encode(dmem_fp8::Format::e5m2, v) != rec[i + 9];
  }
  CHECK(bad4 == 0);
  CHECK(bad5 == 0);
  // Decoding: every code as dmem's core decodes it (also torch-exact, tests/golden/dtype).
  CHECK(std::isnan(dmem_fp8::decode(dmem_fp8::Format::e4m3, 0x7F)));
  CHECK(dmem_fp8::decode(dmem_fp8::Format::e4m3, 0x7E) == 448.0f);
  CHECK(std::isinf(dmem_fp8::decode(dmem_fp8::Format::e5m2, 0xFC)));
}

TEST_CASE("fp8_cast: plugin stores, scales and upcasts exactly", "[fp8_cast]") {
  dmem::PluginRegistry reg;
  REQUIRE(reg.load(DMEM_TEST_PLUGIN_FP8_CAST).ok());
  const dmem::PluginInfo* info = reg.find("dmem.quantizer.fp8_cast");
  REQUIRE(info != nullptr);
  CHECK(info->caps.variant == "e4m3");
  CHECK(info->caps.is_cast);
  const dmem::QuantizerCaps* builtin = dmem::find_quantizer("dmem.quantizer.fp8_cast", "e4m3");
  REQUIRE(builtin != nullptr);
  CHECK(builtin->quality == info->caps.quality);
  CHECK(builtin->speed_factor == info->caps.speed_factor);  // the planner and the plugin agree

  QuantizerInstance q(DMEM_TEST_PLUGIN_FP8_CAST);
  std::vector<float> w = {1.0f, -2.5f, 500.0f, NAN, 0.0f, -0.0f, 1e-9f, 3.0f};
  for (const char* scale : {"none", "tensor", "channel"})
    for (const char* fmt : {"e4m3", "e5m2"}) {
      INFO(scale << " " << fmt);
      REQUIRE(q.create({{"format", fmt}, {"scale", scale}}) == DMEM_PLUGIN_OK);
      auto src = abi_tensor(DMEM_PLUGIN_DTYPE_F32, {2, 4}, w.data(), 32);
      std::uint64_t bytes = 0;
      REQUIRE(q.stored_bytes(src, bytes) == DMEM_PLUGIN_OK);
      const std::uint64_t ns = std::string(scale) == "none"     ? 0
                               : std::string(scale) == "tensor" ? 1
                                                                : 2;
      CHECK(bytes == 8 + 4 * ns);
      std::vector<std::uint8_t> packed(bytes);
      auto pk = abi_tensor(DMEM_PLUGIN_DTYPE_F32, {2, 4}, packed.data(), bytes);
      REQUIRE(q.quantize(src, pk) == DMEM_PLUGIN_OK);
      std::vector<float> back(8);
      auto dst = abi_tensor(DMEM_PLUGIN_DTYPE_F32, {2, 4}, back.data(), 32);
      REQUIRE(q.dequantize(pk, dst) == DMEM_PLUGIN_OK);
      const auto f = std::string(fmt) == "e4m3" ? dmem_fp8::Format::e4m3 : dmem_fp8::Format::e5m2;
      for (std::size_t i = 0; i < 8; ++i) {
        float scale_v = 1.0f;
        if (ns) std::memcpy(&scale_v, packed.data() + 4 * (ns == 1 ? 0 : i / 4), 4);
        const float want = ns ? dmem_fp8::decode(f, dmem_fp8::encode(f, w[i] / scale_v)) * scale_v
                              : dmem_fp8::decode(f, dmem_fp8::encode(f, w[i]));
        if (std::isnan(want))
          CHECK(std::isnan(back[i]));
        else
          CHECK(std::bit_cast<std::uint32_t>(back[i]) == std::bit_cast<std::uint32_t>(want));
      }
    }
  // Without a scale, 500 saturates to 448 in e4m3 (torch 2.15) and stays 500 -> 512 in e5m2.
  REQUIRE(q.create({{"format", "e4m3"}}) == DMEM_PLUGIN_OK);
  std::vector<std::uint8_t> p(8);
  auto src = abi_tensor(DMEM_PLUGIN_DTYPE_F32, {2, 4}, w.data(), 32);
  auto pk = abi_tensor(DMEM_PLUGIN_DTYPE_F32, {2, 4}, p.data(), 8);
  REQUIRE(q.quantize(src, pk) == DMEM_PLUGIN_OK);
  CHECK(p[2] == 0x7E);
  CHECK(p[3] == 0x7F);
}

TEST_CASE("fp8_cast: linear within bound; bad parameters refused", "[fp8_cast]") {
  QuantizerInstance q(DMEM_TEST_PLUGIN_FP8_CAST);
  CHECK(q.create({{"format", "e3m4"}}) == DMEM_PLUGIN_INVALID_ARGUMENT);
  CHECK(q.error().find("format 'e3m4'") != std::string::npos);
  CHECK(q.create({{"mode", "gemm"}}) == DMEM_PLUGIN_UNSUPPORTED);
  CHECK(q.error().find("weight_only") != std::string::npos);
  CHECK(q.create({{"scale", "row"}}) == DMEM_PLUGIN_INVALID_ARGUMENT);
  REQUIRE(q.create({{"scale", "channel"}}) == DMEM_PLUGIN_OK);
  std::vector<float> w(6 * 10), x(3 * 10), y(3 * 6), wd(60);
  for (std::size_t i = 0; i < w.size(); ++i) w[i] = std::sin(static_cast<float>(i)) * 0.3f;
  for (std::size_t i = 0; i < x.size(); ++i) x[i] = std::cos(static_cast<float>(i));
  auto conv = abi_tensor(DMEM_PLUGIN_DTYPE_F32, {6, 5, 2}, w.data(), 240);
  std::uint64_t bytes = 0;
  CHECK(q.stored_bytes(conv, bytes) == DMEM_PLUGIN_INVALID_ARGUMENT);
  auto wt = abi_tensor(DMEM_PLUGIN_DTYPE_F32, {6, 10}, w.data(), 240);
  REQUIRE(q.stored_bytes(wt, bytes) == DMEM_PLUGIN_OK);
  std::vector<std::uint8_t> packed(bytes);
  auto pk = abi_tensor(DMEM_PLUGIN_DTYPE_F32, {6, 10}, packed.data(), bytes);
  REQUIRE(q.quantize(wt, pk) == DMEM_PLUGIN_OK);
  auto dq = abi_tensor(DMEM_PLUGIN_DTYPE_F32, {6, 10}, wd.data(), 240);
  REQUIRE(q.dequantize(pk, dq) == DMEM_PLUGIN_OK);
  auto xt = abi_tensor(DMEM_PLUGIN_DTYPE_F32, {3, 10}, x.data(), 120);
  auto yt = abi_tensor(DMEM_PLUGIN_DTYPE_F32, {3, 6}, y.data(), 72);
  REQUIRE(q.linear(xt, pk, nullptr, yt) == DMEM_PLUGIN_OK);
  for (int r = 0; r < 3; ++r)
    for (int o = 0; o < 6; ++o) {
      double ref = 0, mag = 0;
      for (int k = 0; k < 10; ++k) {
        ref += static_cast<double>(x[r * 10 + k]) * wd[o * 10 + k];
        mag += std::fabs(static_cast<double>(x[r * 10 + k]) * wd[o * 10 + k]);
      }
      CHECK(std::fabs(y[r * 6 + o] - ref) <= 11 * 0x1p-24 * mag);
    }
  auto ints = abi_tensor(DMEM_PLUGIN_DTYPE_I8, {6, 10}, w.data(), 60);
  CHECK(q.stored_bytes(ints, bytes) == DMEM_PLUGIN_UNSUPPORTED);
}

TEST_CASE("dmem plugins lists the stock plugins from bin/plugins", "[fp8_cast][nf4]") {
  const std::string cli = dmem::test::cli_path();
  if (cli.empty()) return;  // built without the CLI
  std::string out;
  REQUIRE(dmem::test::run_command(cli + " plugins --json", &out, false) == 0);
  CHECK(out.find("\"dmem.quantizer.nf4\"") != std::string::npos);
  CHECK(out.find("\"dmem.quantizer.fp8_cast\"") != std::string::npos);
}

#endif  // DMEM_TEST_PLUGIN_FP8_CAST
