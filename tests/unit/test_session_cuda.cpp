// The Session on the CUDA device: refused with the reason where there is no GPU; on a GPU every
// placement gives the CPU session's outputs (within f32 rounding: the GEMMs sum in another
// order, and the CUDA linear rounds activations to the weight's 16-bit type as tensor cores
// do, so the CPU side is given the same rounded activations), weights are never copied back,
// and evicted weights return to the driver at once. cuBLASLt and the reference kernel agree.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include "backend/cuda/cuda_device.hpp"
#include "backend/cuda/cuda_probe.hpp"
#include "dmem/plugin_registry.hpp"
#include "dmem/session.hpp"
#include "support/runtime_fixture.hpp"
#include "support/test_support.hpp"

#if DMEM_TEST_HAVE_CUDART
#include <cuda_runtime.h>
#endif

using namespace dmem;

namespace {

bool have_gpu() {
  return detail::cuda_compiled() && !detail::cuda_devices().empty();
}

bool skip_without_gpu() {
  if (have_gpu()) return false;
  std::printf("DMEM_SKIP: no CUDA device\n");
  return true;
}

// Runs every linear leaf of every unit on both sessions and returns the largest difference
// relative to the largest output.
double max_relative_difference(Session& cpu, Session& gpu, std::size_t tokens) {
  double worst = 0;
  for (const std::string& unit : cpu.modules("transformer")) {
    auto a = cpu.acquire("transformer", unit);
    auto b = gpu.acquire("transformer", unit);
    REQUIRE(a.has_value());
    REQUIRE(b.has_value());
    for (const TensorView& t : a->tensors()) {
      const std::string& name = *t.name;
      if (t.shape->size() != 2 || !name.ends_with(".weight")) continue;
      const std::uint64_t out = (*t.shape)[0], in = (*t.shape)[1];
      const std::string leaf = name.substr(0, name.size() - 7);
      std::vector<float> x(tokens * in), y_cpu(tokens * out), y_gpu(tokens * out);
      for (std::size_t i = 0; i < x.size(); ++i) x[i] = std::cos(static_cast<float>(i) * 0.37f);
      const TensorView* on_gpu = b->find(name);
      REQUIRE(on_gpu != nullptr);
      if (on_gpu->dtype == DType::bf16 || on_gpu->dtype == DType::f16) {
        std::vector<std::uint16_t> half(x.size());
        REQUIRE(convert(DType::f32, x.data(), on_gpu->dtype, half.data(), x.size()).is_ok());
        REQUIRE(convert(on_gpu->dtype, half.data(), DType::f32, x.data(), x.size()).is_ok());
      }
      REQUIRE(cpu.linear(*a, leaf, x.data(), tokens, y_cpu.data()).is_ok());
      auto xb = gpu.allocate_buffer(x.size() * 4);
      auto yb = gpu.allocate_buffer(y_gpu.size() * 4);
      REQUIRE(xb.has_value());
      REQUIRE(yb.has_value());
      REQUIRE(gpu.upload(*xb, x.data(), x.size() * 4).is_ok());
      REQUIRE(gpu.linear(*b, leaf, static_cast<const float*>(*xb), tokens, static_cast<float*>(*yb))
                  .is_ok());
      REQUIRE(gpu.download(y_gpu.data(), *yb, y_gpu.size() * 4).is_ok());
      gpu.release_buffer(*xb, x.size() * 4);
      gpu.release_buffer(*yb, y_gpu.size() * 4);
      double scale = 1e-30, diff = 0;
      for (std::size_t i = 0; i < y_cpu.size(); ++i) {
        scale = std::max(scale, static_cast<double>(std::fabs(y_cpu[i])));
        diff = std::max(diff, static_cast<double>(std::fabs(y_cpu[i] - y_gpu[i])));
      }
      worst = std::max(worst, diff / scale);
    }
  }
  return worst;
}

}  // namespace

TEST_CASE("without a GPU a CUDA session is refused with the reason", "[runtime]") {
  if (have_gpu()) return;  // the [cuda] tests below cover that machine
  test::TempDir dir;
  const Model model = test::make_block_model(dir.file("m.safetensors"), 2, 32);
  SessionOptions options;
  options.device = DeviceKind::cuda;
  auto session = Session::open(model, test::one_component({}), options);
  REQUIRE_FALSE(session.has_value());
  CHECK(session.status().rule() == "runtime.device");
  CHECK_FALSE(session.status().message().empty());
  CHECK(session.status().hint().find("cpu") != std::string::npos);
}

TEST_CASE("a CUDA session gives the CPU session's outputs in every placement", "[cuda]") {
  if (skip_without_gpu()) return;
  test::TempDir dir;
  const Model model = test::make_block_model(dir.file("m.safetensors"), 6, 96);
  Storage cast;
  cast.kind = StorageKind::layerwise_cast;
  struct Case {
    PlacementKind kind;
    Tier park;
    Storage storage;
  };
  const Case cases[] = {{PlacementKind::resident, Tier::pinned, {}},
                        {PlacementKind::group_offload, Tier::pinned, {}},
                        {PlacementKind::group_offload, Tier::pageable, cast},
                        {PlacementKind::partial, Tier::pinned, {}},
                        {PlacementKind::sequential, Tier::pinned, {}},
                        {PlacementKind::model_offload, Tier::pinned, {}},
                        {PlacementKind::disk, Tier::disk, {}},
                        {PlacementKind::disk, Tier::disk, cast}};
  for (const Case& c : cases) {
    INFO("placement " << static_cast<int>(c.kind) << " park " << static_cast<int>(c.park)
                      << " cast " << (c.storage.kind == StorageKind::layerwise_cast));
    Placement p;
    p.kind = c.kind;
    p.park = c.park;
    p.resident_blocks = 2;
    SessionOptions on_gpu;
    on_gpu.device = DeviceKind::cuda;
    on_gpu.cache_dir = dir.path().string();
    SessionOptions on_cpu;
    on_cpu.cache_dir = dir.path().string();
    auto gpu = Session::open(model, test::one_component(p, c.storage), on_gpu);
    if (!gpu) FAIL(gpu.status().to_string());
    auto cpu = Session::open(model, test::one_component(p, c.storage), on_cpu);
    REQUIRE(cpu.has_value());
    CHECK(gpu->device() == DeviceKind::cuda);
    CHECK(max_relative_difference(*cpu, *gpu, 7) < 1e-4);
    CHECK(gpu->stats().copies_to_host == 0);
    CHECK(gpu->stats().pin_calls <= 1);
  }
}

#if DMEM_TEST_HAVE_CUDART
TEST_CASE("evicted weights go back to the driver at once", "[cuda]") {
  if (skip_without_gpu()) return;
  test::TempDir dir;
  // About 120 MiB of weights in 8 blocks of width 1024.
  const Model model = test::make_block_model(dir.file("m.safetensors"), 8, 1024);
  Placement p;
  p.kind = PlacementKind::model_offload;
  SessionOptions options;
  options.device = DeviceKind::cuda;
  auto session = Session::open(model, test::one_component(p), options);
  REQUIRE(session.has_value());
  std::size_t free_before = 0, free_loaded = 0, free_after = 0, total = 0;
  REQUIRE(cudaMemGetInfo(&free_before, &total) == cudaSuccess);
  {
    auto all = session->acquire("transformer", "");
    REQUIRE(all.has_value());
    REQUIRE(cudaMemGetInfo(&free_loaded, &total) == cudaSuccess);
  }
  session->finish("transformer");
  REQUIRE(cudaMemGetInfo(&free_after, &total) == cudaSuccess);
  const std::uint64_t weights = session->stats().device.peak;
  std::printf(
      "weights %.1f MiB; free before %.1f MiB, loaded %.1f MiB, after finish %.1f MiB\n",
      static_cast<double>(weights) / 1048576.0, static_cast<double>(free_before) / 1048576.0,
      static_cast<double>(free_loaded) / 1048576.0, static_cast<double>(free_after) / 1048576.0);
  CHECK(free_before - free_loaded >= weights * 9 / 10);
  // Unmapped on eviction: within 32 MiB of where it started (driver bookkeeping).
  CHECK(free_after + (32u << 20) >= free_before);
  CHECK(session->stats().device.in_use == 0);
}
#endif

namespace {

// Runs one linear layer on `device` with host data in and out.
std::vector<float> device_linear(detail::ComputeDevice& device, const std::vector<unsigned char>& w,
                                 DType wt, std::size_t w_offset,
                                 const std::vector<std::uint16_t>& bias,
                                 const std::vector<float>& x, std::size_t tokens, std::size_t in,
                                 std::size_t out) {
  auto dw = device.allocate(w.size() + w_offset);
  auto dx = device.allocate(x.size() * 4);
  auto dy = device.allocate(tokens * out * 4);
  auto db = device.allocate(bias.size() * 2 + 2);
  REQUIRE(dw.has_value());
  REQUIRE(dx.has_value());
  REQUIRE(dy.has_value());
  REQUIRE(db.has_value());
  void* wp = static_cast<unsigned char*>(*dw) + w_offset;  // aligned to one element at least
  REQUIRE(device.copy_to_device(wp, w.data(), w.size()).is_ok());
  REQUIRE(device.copy_to_device(*dx, x.data(), x.size() * 4).is_ok());
  if (!bias.empty()) REQUIRE(device.copy_to_device(*db, bias.data(), bias.size() * 2).is_ok());
  detail::LinearArgs args;
  args.weight = wp;
  args.weight_dtype = wt;
  args.out = out;
  args.in = in;
  args.bias = bias.empty() ? nullptr : *db;
  args.bias_dtype = DType::bf16;
  args.x = static_cast<const float*>(*dx);
  args.tokens = tokens;
  args.y = static_cast<float*>(*dy);
  const Status status = device.linear(args);
  INFO(status.to_string());
  REQUIRE(status.is_ok());
  std::vector<float> y(tokens * out);
  REQUIRE(device.copy_to_host(y.data(), *dy, y.size() * 4).is_ok());
  device.free(*dw, w.size() + w_offset);
  device.free(*dx, x.size() * 4);
  device.free(*dy, tokens * out * 4);
  device.free(*db, bias.size() * 2 + 2);
  return y;
}

}  // namespace

TEST_CASE("cuBLASLt linear layers equal the reference kernel's", "[cuda]") {
  if (skip_without_gpu()) return;
  auto fast = detail::make_cuda_device(0);
  REQUIRE(fast.has_value());
  ::setenv("DMEM_CUBLASLT", "0", 1);
  auto reference = detail::make_cuda_device(0);
  ::unsetenv("DMEM_CUBLASLT");
  REQUIRE(reference.has_value());
  std::printf("linear: %s; with DMEM_CUBLASLT=0: %s\n", (*fast)->linear_backend().c_str(),
              (*reference)->linear_backend().c_str());
  // cuBLASLt ships with the toolkit: a GPU machine without it runs slowly, which this flags.
  CHECK((*fast)->linear_backend().rfind("cuBLASLt", 0) == 0);
  CHECK((*reference)->linear_backend().find("DMEM_CUBLASLT=0") != std::string::npos);

  struct Shape {
    std::size_t tokens, in, out, w_offset;
  };
  const Shape shapes[] = {{7, 96, 40, 0},      {1, 64, 64, 0},       {64, 256, 128, 4},
                          {333, 1000, 515, 0}, {256, 3072, 3072, 0}, {5, 30, 17, 2}};
  std::mt19937 rng(7);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  for (const DType wt : {DType::f32, DType::bf16, DType::f16}) {
    for (const Shape& sh : shapes) {
      for (const bool with_bias : {false, true}) {
        INFO(dtype_name(wt) << " tokens " << sh.tokens << " in " << sh.in << " out " << sh.out
                            << " offset " << sh.w_offset << " bias " << with_bias);
        std::vector<float> wf(sh.out * sh.in), x(sh.tokens * sh.in), bf(sh.out);
        for (float& v : wf) v = normal(rng) * 0.05f;
        for (float& v : x) v = normal(rng);
        for (float& v : bf) v = normal(rng);
        std::vector<unsigned char> w(*dtype_bytes(wt, wf.size()));
        REQUIRE(convert(DType::f32, wf.data(), wt, w.data(), wf.size()).is_ok());
        std::vector<std::uint16_t> bias;
        if (with_bias) {
          bias.resize(bf.size());
          REQUIRE(convert(DType::f32, bf.data(), DType::bf16, bias.data(), bf.size()).is_ok());
        }
        // The offset in elements: weights inside a group are aligned to their element only.
        const std::size_t offset = sh.w_offset * *dtype_bytes(wt, 1);
        const auto y_fast = device_linear(**fast, w, wt, offset, bias, x, sh.tokens, sh.in, sh.out);
        const auto y_ref =
            device_linear(**reference, w, wt, offset, bias, x, sh.tokens, sh.in, sh.out);
        double scale = 1e-30, diff = 0;
        for (std::size_t i = 0; i < y_ref.size(); ++i) {
          scale = std::max(scale, static_cast<double>(std::fabs(y_ref[i])));
          diff = std::max(diff, static_cast<double>(std::fabs(y_ref[i] - y_fast[i])));
        }
        CHECK(diff / scale < 1e-5);
      }
    }
  }
}

#if defined(DMEM_TEST_PLUGIN_NF4) && defined(DMEM_TEST_PLUGIN_GGUF)
// Quantized storage on the GPU: packed weights rest and move packed; each layer is unpacked by
// the plugin's CUDA kernel into bf16 and run through the device GEMM. The reference is the CPU
// session's packed weight unpacked by the same plugin on the CPU into bf16, with the activations
// rounded to bf16 as the GPU does, summed in double.
TEST_CASE("quantized storage runs on the GPU through the plugins' CUDA kernels", "[cuda]") {
  if (skip_without_gpu()) return;
  test::TempDir dir;
  // Width 256: q4_k packs rows whose length is a multiple of its 256-element super-blocks.
  const Model model = test::make_block_model(dir.file("m.safetensors"), 3, 256);
  PluginRegistry registry;
  REQUIRE(registry.load(DMEM_TEST_PLUGIN_NF4).is_ok());
  REQUIRE(registry.load(DMEM_TEST_PLUGIN_GGUF).is_ok());
  struct Case {
    const char* quantizer;
    std::vector<std::pair<std::string, std::string>> params;
  };
  const Case cases[] = {{"dmem.quantizer.nf4", {}},
                        {"dmem.quantizer.gguf", {{"type", "q8_0"}}},
                        {"dmem.quantizer.gguf", {{"type", "q4_k"}}}};
  for (const Case& c : cases) {
    Storage storage;
    storage.kind = StorageKind::quantized;
    storage.quantizer = c.quantizer;
    storage.params = c.params;
    auto q = registry.create_quantizer(c.quantizer, c.params);
    REQUIRE(q.has_value());
    for (const PlacementKind kind : {PlacementKind::resident, PlacementKind::group_offload}) {
      INFO(c.quantizer << (c.params.empty() ? "" : " " + c.params[0].second) << " placement "
                       << static_cast<int>(kind));
      Placement p;
      p.kind = kind;
      SessionOptions on_gpu;
      on_gpu.device = DeviceKind::cuda;
      on_gpu.plugins = &registry;
      SessionOptions on_cpu;
      on_cpu.plugins = &registry;
      auto gpu = Session::open(model, test::one_component(p, storage), on_gpu);
      if (!gpu) FAIL(gpu.status().to_string());
      auto cpu = Session::open(model, test::one_component(p, storage), on_cpu);
      REQUIRE(cpu.has_value());
      const std::size_t tokens = 5;
      std::size_t packed_layers = 0;
      for (const std::string& unit : cpu->modules("transformer")) {
        auto a = cpu->acquire("transformer", unit);
        auto b = gpu->acquire("transformer", unit);
        REQUIRE(a.has_value());
        REQUIRE(b.has_value());
        for (const TensorView& t : a->tensors()) {
          const std::string& name = *t.name;
          if (!t.packed || !name.ends_with(".weight")) continue;
          ++packed_layers;
          const std::uint64_t out = (*t.shape)[0], in = (*t.shape)[1];
          std::vector<std::uint16_t> w16(out * in);
          REQUIRE(q->dequantize(HostTensor{t.dtype, *t.shape, t.data, t.nbytes}, DType::bf16,
                                w16.data(), w16.size() * 2)
                      .is_ok());
          std::vector<float> w(out * in), x(tokens * in), xr(tokens * in);
          REQUIRE(convert(DType::bf16, w16.data(), DType::f32, w.data(), w.size()).is_ok());
          for (std::size_t i = 0; i < x.size(); ++i) x[i] = std::cos(static_cast<float>(i) * 0.37f);
          std::vector<std::uint16_t> x16(x.size());
          REQUIRE(convert(DType::f32, x.data(), DType::bf16, x16.data(), x.size()).is_ok());
          REQUIRE(convert(DType::bf16, x16.data(), DType::f32, xr.data(), x.size()).is_ok());
          std::vector<float> bias(out, 0.0f);
          const std::string leaf = name.substr(0, name.size() - 7);
          if (const TensorView* bv = a->find(leaf + ".bias"))
            REQUIRE(convert(bv->dtype, bv->data, DType::f32, bias.data(), out).is_ok());
          std::vector<float> y(tokens * out);
          auto xb = gpu->allocate_buffer(x.size() * 4);
          auto yb = gpu->allocate_buffer(y.size() * 4);
          REQUIRE(xb.has_value());
          REQUIRE(yb.has_value());
          REQUIRE(gpu->upload(*xb, x.data(), x.size() * 4).is_ok());
          const Status ran = gpu->linear(*b, leaf, static_cast<const float*>(*xb), tokens,
                                         static_cast<float*>(*yb));
          INFO(ran.to_string());
          REQUIRE(ran.is_ok());
          REQUIRE(gpu->download(y.data(), *yb, y.size() * 4).is_ok());
          gpu->release_buffer(*xb, x.size() * 4);
          gpu->release_buffer(*yb, y.size() * 4);
          double scale = 1e-30, diff = 0;
          for (std::size_t tk = 0; tk < tokens; ++tk) {
            for (std::size_t o = 0; o < out; ++o) {
              double ref = bias[o];
              for (std::size_t k = 0; k < in; ++k)
                ref += static_cast<double>(xr[tk * in + k]) * static_cast<double>(w[o * in + k]);
              scale = std::max(scale, std::fabs(ref));
              diff = std::max(diff, std::fabs(ref - static_cast<double>(y[tk * out + o])));
            }
          }
          CHECK(diff / scale < 1e-5);
        }
      }
      CHECK(packed_layers > 0);
      CHECK(gpu->stats().copies_to_host == 0);
    }
  }
}
#endif
