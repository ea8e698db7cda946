// The stock plugins' CUDA kernels against their CPU reference, on a GPU ([cuda]: skipped without
// one): gguf dequantization bit-identical to the CPU for q8_0 q4_0 q4_k q5_k q6_k, gguf linear
// and bnb_int8 LLM.int8 linear within their documented bounds.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "backend/cuda/cuda_probe.hpp"
#include "support/plugin_quantizer.hpp"

#if DMEM_TEST_HAVE_CUDART && DMEM_TEST_HAVE_GGUF_PLUGIN && DMEM_TEST_HAVE_BNB_INT8_PLUGIN
#include <cuda_runtime.h>

using dmem::test::LoadedQuantizerPlugin;
using dmem::test::plugin_tensor;
using dmem::test::PluginError;

namespace {

bool skip_without_gpu() {
  std::string why;
  if (!dmem::detail::cuda_compiled() || dmem::detail::cuda_devices(&why).empty()) {
    std::printf("DMEM_SKIP: no CUDA device (%s)\n", why.c_str());
    return true;
  }
  return false;
}

// Device copy of a host buffer, freed with the object.
struct DeviceBuffer {
  void* p = nullptr;
  std::size_t n = 0;
  explicit DeviceBuffer(std::size_t bytes, const void* host = nullptr) : n(bytes) {
    REQUIRE(cudaMalloc(&p, bytes) == cudaSuccess);
    if (host) REQUIRE(cudaMemcpy(p, host, bytes, cudaMemcpyHostToDevice) == cudaSuccess);
  }
  ~DeviceBuffer() { cudaFree(p); }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  template <class T>
  std::vector<T> get() const {
    std::vector<T> v(n / sizeof(T));
    REQUIRE(cudaDeviceSynchronize() == cudaSuccess);
    REQUIRE(cudaMemcpy(v.data(), p, n, cudaMemcpyDeviceToHost) == cudaSuccess);
    return v;
  }
};

std::vector<float> wave(std::size_t n, float a, float b) {
  std::vector<float> v(n);
  for (std::size_t i = 0; i < n; ++i) v[i] = std::sin(a * static_cast<float>(i)) * b;
  return v;
}

}  // namespace

TEST_CASE("gguf plugin on CUDA: dequantization matches the CPU bit for bit; linear in bound",
          "[cuda][gguf_plugin]") {
  if (skip_without_gpu()) return;
  const LoadedQuantizerPlugin plugin(DMEM_TEST_PLUGIN_GGUF);
  REQUIRE(plugin.status().is_ok());
  const std::uint64_t tokens = 33, in = 1024, out = 70;
  const auto w = wave(out * in, 0.37f, 1.5f), x = wave(tokens * in, 0.11f, 2.0f),
             bias = wave(out, 1.3f, 0.5f);
  for (const char* type : {"q8_0", "q4_0", "q4_k", "q5_k", "q6_k"}) {
    INFO(type);
    auto q = plugin.create({{"type", type}});
    REQUIRE(q);
    CHECK((q->caps().exec_devices & DMEM_PLUGIN_DEVICE_CUDA) != 0);
    auto src =
        plugin_tensor(DMEM_PLUGIN_DTYPE_F32, {out, in}, const_cast<float*>(w.data()), w.size() * 4);
    std::uint64_t bytes = 0;
    REQUIRE(q->table().stored_bytes(q->instance(), &src, &bytes, nullptr) == DMEM_PLUGIN_OK);
    std::vector<std::uint8_t> packed(bytes);
    auto pt = plugin_tensor(DMEM_PLUGIN_DTYPE_F32, {out, in}, packed.data(), bytes);
    REQUIRE(q->table().quantize(q->instance(), &src, &pt, nullptr, nullptr) == DMEM_PLUGIN_OK);
    std::vector<float> cpu(w.size());
    auto cd = plugin_tensor(DMEM_PLUGIN_DTYPE_F32, {out, in}, cpu.data(), cpu.size() * 4);
    REQUIRE(q->table().dequantize(q->instance(), &pt, &cd, nullptr, nullptr) == DMEM_PLUGIN_OK);

    DeviceBuffer dp(bytes, packed.data()), dy(w.size() * 4);
    auto gp = plugin_tensor(DMEM_PLUGIN_DTYPE_F32, {out, in}, dp.p, bytes, DMEM_PLUGIN_DEVICE_CUDA);
    auto gy = plugin_tensor(DMEM_PLUGIN_DTYPE_F32, {out, in}, dy.p, dy.n, DMEM_PLUGIN_DEVICE_CUDA);
    PluginError e;
    REQUIRE(q->table().dequantize(q->instance(), &gp, &gy, nullptr, &e.err) == DMEM_PLUGIN_OK);
    const auto gpu = dy.get<float>();
    CHECK(std::memcmp(gpu.data(), cpu.data(), cpu.size() * 4) == 0);

    DeviceBuffer dx(x.size() * 4, x.data()), db(bias.size() * 4, bias.data()),
        dout(tokens * out * 4);
    auto xt =
        plugin_tensor(DMEM_PLUGIN_DTYPE_F32, {tokens, in}, dx.p, dx.n, DMEM_PLUGIN_DEVICE_CUDA);
    auto bt = plugin_tensor(DMEM_PLUGIN_DTYPE_F32, {out}, db.p, db.n, DMEM_PLUGIN_DEVICE_CUDA);
    auto yt = plugin_tensor(DMEM_PLUGIN_DTYPE_F32, {tokens, out}, dout.p, dout.n,
                            DMEM_PLUGIN_DEVICE_CUDA);
    REQUIRE(q->table().linear(q->instance(), &xt, &gp, &bt, &yt, nullptr, &e.err) ==
            DMEM_PLUGIN_OK);
    const auto y = dout.get<float>();
    const double u = std::ldexp(1.0, -24), k = static_cast<double>(in + 1),
                 gamma = k * u / (1 - k * u);
    for (std::uint64_t n = 0; n < tokens; ++n)
      for (std::uint64_t o = 0; o < out; ++o) {
        double exact = bias[o], mag = std::fabs(bias[o]);
        for (std::uint64_t i = 0; i < in; ++i) {
          exact += static_cast<double>(x[n * in + i]) * cpu[o * in + i];
          mag += std::fabs(static_cast<double>(x[n * in + i]) * cpu[o * in + i]);
        }
        CHECK(std::fabs(y[n * out + o] - exact) <= gamma * mag);
      }
  }
}

TEST_CASE("bnb_int8 plugin on CUDA: LLM.int8 linear within its bound; dequantize as the CPU",
          "[cuda][bnb_int8]") {
  if (skip_without_gpu()) return;
  const LoadedQuantizerPlugin plugin(DMEM_TEST_PLUGIN_BNB_INT8);
  REQUIRE(plugin.status().is_ok());
  // in % 4 == 0 takes cuBLASLt; 30 takes the fallback kernel.
  for (std::uint64_t in : {256u, 30u}) {
    const std::uint64_t tokens = 17, out = 48;
    INFO("in " << in);
    const auto w = wave(out * in, 0.29f, 0.8f), bias = wave(out, 0.7f, 0.3f);
    auto x = wave(tokens * in, 0.13f, 1.5f);
    x[3 * in + 5] = 9.0f;  // outliers above the threshold: column 5 and 7 take the f32 path
    x[10 * in + 7] = -12.0f;
    auto q = plugin.create({{"threshold", "6.0"}});
    REQUIRE(q);
    auto src =
        plugin_tensor(DMEM_PLUGIN_DTYPE_F32, {out, in}, const_cast<float*>(w.data()), w.size() * 4);
    std::uint64_t bytes = 0;
    REQUIRE(q->table().stored_bytes(q->instance(), &src, &bytes, nullptr) == DMEM_PLUGIN_OK);
    std::vector<std::uint8_t> packed(bytes);
    auto pt = plugin_tensor(DMEM_PLUGIN_DTYPE_F32, {out, in}, packed.data(), bytes);
    REQUIRE(q->table().quantize(q->instance(), &src, &pt, nullptr, nullptr) == DMEM_PLUGIN_OK);
    std::vector<float> wd(w.size());
    auto cd = plugin_tensor(DMEM_PLUGIN_DTYPE_F32, {out, in}, wd.data(), wd.size() * 4);
    REQUIRE(q->table().dequantize(q->instance(), &pt, &cd, nullptr, nullptr) == DMEM_PLUGIN_OK);

    DeviceBuffer dp(bytes, packed.data()), dw(wd.size() * 4);
    auto gp = plugin_tensor(DMEM_PLUGIN_DTYPE_F32, {out, in}, dp.p, bytes, DMEM_PLUGIN_DEVICE_CUDA);
    auto gw = plugin_tensor(DMEM_PLUGIN_DTYPE_F32, {out, in}, dw.p, dw.n, DMEM_PLUGIN_DEVICE_CUDA);
    PluginError e;
    REQUIRE(q->table().dequantize(q->instance(), &gp, &gw, nullptr, &e.err) == DMEM_PLUGIN_OK);
    const auto gwd = dw.get<float>();
    CHECK(std::memcmp(gwd.data(), wd.data(), wd.size() * 4) == 0);

    DeviceBuffer dx(x.size() * 4, x.data()), db(bias.size() * 4, bias.data()), dy(tokens * out * 4);
    auto xt =
        plugin_tensor(DMEM_PLUGIN_DTYPE_F32, {tokens, in}, dx.p, dx.n, DMEM_PLUGIN_DEVICE_CUDA);
    auto bt = plugin_tensor(DMEM_PLUGIN_DTYPE_F32, {out}, db.p, db.n, DMEM_PLUGIN_DEVICE_CUDA);
    auto yt =
        plugin_tensor(DMEM_PLUGIN_DTYPE_F32, {tokens, out}, dy.p, dy.n, DMEM_PLUGIN_DEVICE_CUDA);
    REQUIRE(q->table().linear(q->instance(), &xt, &gp, &bt, &yt, nullptr, &e.err) ==
            DMEM_PLUGIN_OK);
    INFO(e.message());
    const auto y = dy.get<float>();
    // Bound (plugins/bnb_int8/README.md): per token, absmax of its non-outlier values / 254 per
    // unit of sum |W_hat| (activation rounding to int8), plus 2^-11 relative (x rounded to f16)
    // and f32 summation.
    for (std::uint64_t n = 0; n < tokens; ++n) {
      float absmax = 0.0f;
      for (std::uint64_t i = 0; i < in; ++i)
        if (std::fabs(x[n * in + i]) < 6.0f) absmax = std::max(absmax, std::fabs(x[n * in + i]));
      for (std::uint64_t o = 0; o < out; ++o) {
        double exact = bias[o], mag = std::fabs(bias[o]), wsum = 0;
        for (std::uint64_t i = 0; i < in; ++i) {
          exact += static_cast<double>(x[n * in + i]) * wd[o * in + i];
          mag += std::fabs(static_cast<double>(x[n * in + i]) * wd[o * in + i]);
          wsum += std::fabs(wd[o * in + i]);
        }
        const double bound = absmax / 254.0 * wsum * 1.0001 + mag * (std::ldexp(1.0, -11) + 1e-6);
        CHECK(std::fabs(y[n * out + o] - exact) <= bound);
      }
    }
  }
}

#endif
