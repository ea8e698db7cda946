// The stock NF4 / FP4 plugin (plugins/nf4), loaded by path as a host loads it: packed codes,
// absmax (plain and double-quantized) and dequantization bit for bit against bitsandbytes 0.50.2
// (tests/golden/nf4, scripts/golden/nf4.py), a bnb-serialised checkpoint, linear within its
// bound, and clear refusals.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "dmem/plugin_registry.hpp"
#include "nf4/bnb4_checkpoint.hpp"
#include "support/golden_safetensors.hpp"
#include "support/quantizer_instance.hpp"

#if defined(DMEM_TEST_WITH_CUDA)
#include <cuda_runtime.h>
#endif

#if defined(DMEM_TEST_PLUGIN_NF4)

using dmem::test::abi_tensor;
using dmem::test::QuantizerInstance;

namespace {

const std::string kGolden = std::string(DMEM_GOLDEN_DIR) + "/nf4/";

std::uint32_t abi_dtype(const std::string& st) {
  if (st == "F32") return DMEM_PLUGIN_DTYPE_F32;
  if (st == "F16") return DMEM_PLUGIN_DTYPE_F16;
  if (st == "BF16") return DMEM_PLUGIN_DTYPE_BF16;
  return DMEM_PLUGIN_DTYPE_U8;
}

// "quant_type=nf4,blocksize=64,double_quant=true" -> parameters.
std::vector<std::pair<std::string, std::string>> parse_params(const std::string& s) {
  std::vector<std::pair<std::string, std::string>> out;
  std::size_t b = 0;
  while (b < s.size()) {
    std::size_t e = s.find(',', b);
    if (e == std::string::npos) e = s.size();
    const std::string kv = s.substr(b, e - b);
    const std::size_t eq = kv.find('=');
    out.emplace_back(kv.substr(0, eq), kv.substr(eq + 1));
    b = e + 1;
  }
  return out;
}

std::string param(const std::vector<std::pair<std::string, std::string>>& p, const char* k) {
  for (const auto& [key, v] : p)
    if (key == k) return v;
  return {};
}

// Index of the first differing byte, or -1.
long first_diff(const std::uint8_t* a, const std::uint8_t* b, std::size_t n) {
  for (std::size_t i = 0; i < n; ++i)
    if (a[i] != b[i]) return static_cast<long>(i);
  return -1;
}

}  // namespace

TEST_CASE("nf4: the registry loads the plugin by path and reads its capabilities", "[nf4]") {
  dmem::PluginRegistry reg;
  const dmem::Status s = reg.load(DMEM_TEST_PLUGIN_NF4);
  INFO(s.to_string());
  REQUIRE(s.ok());
  const dmem::PluginInfo* info = reg.find("dmem.quantizer.nf4");
  REQUIRE(info != nullptr);
  CHECK(info->caps.variant == "nf4");
  CHECK(info->caps.quality == dmem::QualityTier::q4);
  CHECK(info->block_size == 64);
  CHECK((info->caps.exec_devices & dmem::kDeviceCpu) != 0);
#if defined(DMEM_TEST_WITH_CUDA)
  CHECK((info->caps.exec_devices & dmem::kDeviceCuda) != 0);
  CHECK_FALSE(info->caps.cuda_archs.empty());
#endif
  // Consistent with the planner's built-in description of the same quantizer.
  const dmem::QuantizerCaps* builtin = dmem::find_quantizer("dmem.quantizer.nf4", "nf4");
  REQUIRE(builtin != nullptr);
  CHECK(builtin->quality == info->caps.quality);
  CHECK(builtin->speed_factor == info->caps.speed_factor);
  CHECK(builtin->storage_tiers == info->caps.storage_tiers);
}

TEST_CASE("nf4: the dynamic 8-bit map is bitsandbytes'", "[nf4]") {
  const auto g = dmem::test::read_golden_safetensors(kGolden + "quantize.safetensors");
  const auto& code2 = g.at("nf4_bf16_bs64_dq.code2");
  REQUIRE(code2.bytes.size() == 256 * 4);
  CHECK(std::memcmp(code2.bytes.data(), dmem_nf4::kDynamicMapBits.data(), 1024) == 0);
}

TEST_CASE("nf4: quantize and dequantize match bitsandbytes bit for bit", "[nf4]") {
  const auto g = dmem::test::read_golden_safetensors(kGolden + "quantize.safetensors");
  QuantizerInstance q(DMEM_TEST_PLUGIN_NF4);
  REQUIRE(g.metadata.size() >= 8);
  for (const auto& [name, spec] : g.metadata) {
    if (name == "format") continue;
    SECTION(name) {
      const auto params = parse_params(spec);
      REQUIRE(q.create(params) == DMEM_PLUGIN_OK);
      const bool nested = param(params, "double_quant") == "true";
      const std::uint64_t bs = std::stoull(param(params, "blocksize"));
      const auto& in = g.at(name + ".input");
      auto src = abi_tensor(abi_dtype(in.dtype), in.shape,
                            const_cast<std::uint8_t*>(in.bytes.data()), in.bytes.size());
      const std::uint64_t n = in.shape[0] * in.shape[1], blocks = (n + bs - 1) / bs;
      const std::uint64_t expect =
          nested ? 4 + 4 * ((blocks + 255) / 256) + blocks + (n + 1) / 2 : 4 * blocks + (n + 1) / 2;
      std::uint64_t bytes = 0;
      REQUIRE(q.stored_bytes(src, bytes) == DMEM_PLUGIN_OK);
      CHECK(bytes == expect);
      std::vector<std::uint8_t> packed(bytes);
      auto pk = abi_tensor(src.dtype, in.shape, packed.data(), bytes);
      REQUIRE(q.quantize(src, pk) == DMEM_PLUGIN_OK);

      const auto l =
          dmem_nf4::make_layout(param(params, "quant_type") == "nf4" ? dmem_nf4::QuantType::nf4
                                                                     : dmem_nf4::QuantType::fp4,
                                n, bs, nested);
      const auto& codes = g.at(name + ".packed").bytes;
      REQUIRE(codes.size() == (n + 1) / 2);
      CHECK(first_diff(packed.data() + l.codes_at, codes.data(), codes.size()) == -1);
      if (nested) {
        const auto& q8 = g.at(name + ".qabsmax").bytes;
        const auto& nest = g.at(name + ".nested_absmax").bytes;
        const auto& off = g.at(name + ".offset").bytes;
        CHECK(std::memcmp(packed.data() + l.offset_at, off.data(), 4) == 0);
        CHECK(first_diff(packed.data() + l.nested_at, nest.data(), nest.size()) == -1);
        CHECK(first_diff(packed.data() + l.qabsmax_at, q8.data(), q8.size()) == -1);
      } else {
        const auto& am = g.at(name + ".absmax").bytes;
        CHECK(first_diff(packed.data() + l.absmax_at, am.data(), am.size()) == -1);
      }
      for (const char* od : {"f32", "bf16", "f16"}) {
        const auto& want = g.at(name + ".deq_" + od);
        std::vector<std::uint8_t> out(want.bytes.size(), 0xAB);
        auto dst = abi_tensor(abi_dtype(want.dtype), in.shape, out.data(), out.size());
        REQUIRE(q.dequantize(pk, dst) == DMEM_PLUGIN_OK);
        INFO("dequantize to " << od);
        CHECK(first_diff(out.data(), want.bytes.data(), out.size()) == -1);
      }
    }
  }
}

TEST_CASE("nf4: a bitsandbytes-serialised Linear4bit dequantizes bit for bit", "[nf4]") {
  const auto g = dmem::test::read_golden_safetensors(kGolden + "linear4bit.safetensors");
  for (const std::string layer : {"nf4_dq", "fp4"}) {
    INFO(layer);
    const std::string w = layer + ".weight";
    auto bytes = [&](const std::string& k) {
      const auto& t = g.at(k);
      return dmem_nf4::Bytes{t.bytes.data(), t.bytes.size()};
    };
    dmem_nf4::Bnb4Tensors t;
    t.weight = bytes(w);
    t.absmax = bytes(w + ".absmax");
    t.quant_map = bytes(w + ".quant_map");
    const bool nested = layer == "nf4_dq";
    if (nested) {
      t.nested_absmax = bytes(w + ".nested_absmax");
      t.nested_quant_map = bytes(w + ".nested_quant_map");
    }
    t.quant_state = bytes(w + ".quant_state.bitsandbytes__" + (nested ? "nf4" : "fp4"));
    for (const char* od : {"f32", "bf16"}) {
      const auto& want = g.at("expect." + layer + "." + od);
      std::vector<std::uint8_t> out(want.bytes.size());
      const auto type = std::string(od) == "f32" ? dmem_nf4::OutType::f32 : dmem_nf4::OutType::bf16;
      const std::string e = dmem_nf4::dequantize_checkpoint(w, t, type, out.data(), out.size());
      INFO(e);
      REQUIRE(e.empty());
      CHECK(first_diff(out.data(), want.bytes.data(), out.size()) == -1);
    }
    // A truncated absmax is named.
    dmem_nf4::Bnb4Tensors bad = t;
    bad.absmax.nbytes -= 1;
    std::vector<float> out(g.at("expect." + layer + ".f32").bytes.size() / 4);
    const std::string e =
        dmem_nf4::dequantize_checkpoint(w, bad, dmem_nf4::OutType::f32, out.data(), out.size() * 4);
    CHECK(e.find(w + ".absmax") != std::string::npos);
  }
}

namespace {

// A random-ish weight and input, made here (no golden needed for the bound).
std::vector<float> ramp(std::size_t n, float scale, unsigned seed) {
  std::vector<float> v(n);
  std::uint32_t s = seed;
  for (auto& x : v) {
    s = s * 1664525u + 1013904223u;
    x = (static_cast<float>(s >> 8) / 16777216.0f - 0.5f) * scale;
  }
  return v;
}

}  // namespace

TEST_CASE("nf4: linear is within its bound of the f32 product with the dequantized weight",
          "[nf4]") {
  QuantizerInstance q(DMEM_TEST_PLUGIN_NF4);
  REQUIRE(q.create({{"quant_type", "nf4"}, {"double_quant", "true"}}) == DMEM_PLUGIN_OK);
  const std::uint64_t out = 24, in = 200, rows = 5;
  auto w = ramp(out * in, 0.2f, 1), x = ramp(rows * in, 2.0f, 2), b = ramp(out, 1.0f, 3);
  auto wt = abi_tensor(DMEM_PLUGIN_DTYPE_F32, {out, in}, w.data(), w.size() * 4);
  std::uint64_t bytes = 0;
  REQUIRE(q.stored_bytes(wt, bytes) == DMEM_PLUGIN_OK);
  std::vector<std::uint8_t> packed(bytes);
  auto pk = abi_tensor(DMEM_PLUGIN_DTYPE_F32, {out, in}, packed.data(), bytes);
  REQUIRE(q.quantize(wt, pk) == DMEM_PLUGIN_OK);
  std::vector<float> wd(out * in);
  auto dq = abi_tensor(DMEM_PLUGIN_DTYPE_F32, {out, in}, wd.data(), wd.size() * 4);
  REQUIRE(q.dequantize(pk, dq) == DMEM_PLUGIN_OK);
  std::vector<float> y(rows * out);
  auto xt = abi_tensor(DMEM_PLUGIN_DTYPE_F32, {1, rows, in}, x.data(), x.size() * 4);
  auto yt = abi_tensor(DMEM_PLUGIN_DTYPE_F32, {1, rows, out}, y.data(), y.size() * 4);
  auto bt = abi_tensor(DMEM_PLUGIN_DTYPE_F32, {out}, b.data(), b.size() * 4);
  REQUIRE(q.linear(xt, pk, &bt, yt) == DMEM_PLUGIN_OK);
  // README bound: |y - ref| <= (in + 1) * 2^-24 * (sum_k |x_k w_k| + |b|), ref in double.
  for (std::uint64_t r = 0; r < rows; ++r)
    for (std::uint64_t o = 0; o < out; ++o) {
      double ref = b[o], mag = std::fabs(b[o]);
      for (std::uint64_t k = 0; k < in; ++k) {
        ref += static_cast<double>(x[r * in + k]) * wd[o * in + k];
        mag += std::fabs(static_cast<double>(x[r * in + k]) * wd[o * in + k]);
      }
      CHECK(std::fabs(y[r * out + o] - ref) <= static_cast<double>(in + 1) * 0x1p-24 * mag);
    }
}

TEST_CASE("nf4: bad parameters, shapes and dtypes are refused with clear messages", "[nf4]") {
  QuantizerInstance q(DMEM_TEST_PLUGIN_NF4);
  CHECK(q.create({{"quant_type", "int4"}}) == DMEM_PLUGIN_INVALID_ARGUMENT);
  CHECK(q.error().find("quant_type 'int4'") != std::string::npos);
  CHECK(q.create({{"blocksize", "48"}}) == DMEM_PLUGIN_INVALID_ARGUMENT);
  CHECK(q.error().find("32, 64, 128") != std::string::npos);
  CHECK(q.create({{"block_size", "64"}}) == DMEM_PLUGIN_INVALID_ARGUMENT);
  CHECK(q.error().find("unknown parameter 'block_size'") != std::string::npos);
  CHECK(q.create({{"double_quant", "yes"}}) == DMEM_PLUGIN_INVALID_ARGUMENT);
  CHECK(q.create({{"double_quant", "true"}, {"compress_statistics", "false"}}) ==
        DMEM_PLUGIN_INVALID_ARGUMENT);
  REQUIRE(q.create({{"compress_statistics", "true"}, {"quant_type", "fp4"}}) == DMEM_PLUGIN_OK);
  CHECK(std::string(q.caps().variant) == "fp4-dq");

  std::uint64_t bytes = 0;
  std::vector<float> v(64);
  auto conv = abi_tensor(DMEM_PLUGIN_DTYPE_F32, {4, 4, 2, 2}, v.data(), 256);
  CHECK(q.stored_bytes(conv, bytes) == DMEM_PLUGIN_INVALID_ARGUMENT);
  CHECK(q.error().find("only 2-D linear weights") != std::string::npos);
  auto ints = abi_tensor(DMEM_PLUGIN_DTYPE_I32, {8, 8}, v.data(), 256);
  CHECK(q.stored_bytes(ints, bytes) == DMEM_PLUGIN_UNSUPPORTED);
  CHECK(q.error().find("f32, f16 or bf16") != std::string::npos);
  auto w = abi_tensor(DMEM_PLUGIN_DTYPE_F32, {8, 8}, v.data(), 256);
  REQUIRE(q.stored_bytes(w, bytes) == DMEM_PLUGIN_OK);
  std::vector<std::uint8_t> small(bytes - 1);
  auto pk = abi_tensor(DMEM_PLUGIN_DTYPE_F32, {8, 8}, small.data(), small.size());
  CHECK(q.quantize(w, pk) == DMEM_PLUGIN_INVALID_ARGUMENT);
  CHECK(q.error().find("needs " + std::to_string(bytes)) != std::string::npos);
  std::vector<float> y(8);
  auto x = abi_tensor(DMEM_PLUGIN_DTYPE_F32, {1, 7}, v.data(), 28);
  auto yt = abi_tensor(DMEM_PLUGIN_DTYPE_F32, {1, 8}, y.data(), 32);
  std::vector<std::uint8_t> ok(bytes);
  auto pw = abi_tensor(DMEM_PLUGIN_DTYPE_F32, {8, 8}, ok.data(), ok.size());
  CHECK(q.linear(x, pw, nullptr, yt) == DMEM_PLUGIN_INVALID_ARGUMENT);
  CHECK(q.error().find("x [..., 8]") != std::string::npos);
}

TEST_CASE("nf4: the CUDA dequantize kernel equals the CPU result", "[nf4][cuda]") {
#if defined(DMEM_TEST_WITH_CUDA)
  int count = 0;
  if (cudaGetDeviceCount(&count) != cudaSuccess || count == 0) {
    std::printf("DMEM_SKIP: no CUDA device\n");
    return;
  }
  QuantizerInstance q(DMEM_TEST_PLUGIN_NF4);
  for (const char* qt : {"nf4", "fp4"})
    for (const char* dq : {"false", "true"}) {
      INFO(qt << " double_quant=" << dq);
      REQUIRE(q.create({{"quant_type", qt}, {"double_quant", dq}, {"blocksize", "128"}}) ==
              DMEM_PLUGIN_OK);
      const std::uint64_t out = 300, in = 257;  // odd element count, several nested blocks
      auto w = ramp(out * in, 0.3f, 7);
      auto wt = abi_tensor(DMEM_PLUGIN_DTYPE_F32, {out, in}, w.data(), w.size() * 4);
      std::uint64_t bytes = 0;
      REQUIRE(q.stored_bytes(wt, bytes) == DMEM_PLUGIN_OK);
      std::vector<std::uint8_t> packed(bytes);
      auto pk = abi_tensor(DMEM_PLUGIN_DTYPE_F32, {out, in}, packed.data(), bytes);
      REQUIRE(q.quantize(wt, pk) == DMEM_PLUGIN_OK);
      void* dpk = nullptr;
      void* dout = nullptr;
      REQUIRE(cudaMalloc(&dpk, bytes) == cudaSuccess);
      REQUIRE(cudaMalloc(&dout, out * in * 4) == cudaSuccess);
      REQUIRE(cudaMemcpy(dpk, packed.data(), bytes, cudaMemcpyHostToDevice) == cudaSuccess);
      for (std::uint32_t dt :
           {DMEM_PLUGIN_DTYPE_F32, DMEM_PLUGIN_DTYPE_BF16, DMEM_PLUGIN_DTYPE_F16}) {
        const std::size_t es = dt == DMEM_PLUGIN_DTYPE_F32 ? 4 : 2;
        std::vector<std::uint8_t> cpu(out * in * es), gpu(out * in * es);
        auto dc = abi_tensor(dt, {out, in}, cpu.data(), cpu.size());
        REQUIRE(q.dequantize(pk, dc) == DMEM_PLUGIN_OK);
        auto gp = abi_tensor(DMEM_PLUGIN_DTYPE_F32, {out, in}, dpk, bytes, DMEM_PLUGIN_DEVICE_CUDA);
        auto go = abi_tensor(dt, {out, in}, dout, gpu.size(), DMEM_PLUGIN_DEVICE_CUDA);
        REQUIRE(q.dequantize(gp, go) == DMEM_PLUGIN_OK);
        REQUIRE(cudaDeviceSynchronize() == cudaSuccess);
        REQUIRE(cudaMemcpy(gpu.data(), dout, gpu.size(), cudaMemcpyDeviceToHost) == cudaSuccess);
        CHECK(first_diff(cpu.data(), gpu.data(), cpu.size()) == -1);
      }
      cudaFree(dpk);
      cudaFree(dout);
    }
#else
  std::printf("DMEM_SKIP: built without CUDA\n");
#endif
}

#endif  // DMEM_TEST_PLUGIN_NF4
