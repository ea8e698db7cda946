// CPU dequantization through the gguf plugin's C table (the path a host takes), per type, as a
// ratio to memcpy of the same f32 output measured in the same run.
//
//   bench_gguf_plugin [--mib N] [--json FILE]   (N MiB of f32 output, default 64)
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "bench_cpu_timing.hpp"
#include "bench_report.hpp"
#include "dmem/plugin/abi.h"
#include "plugin_host/plugin_library.hpp"

namespace {

dmem_plugin_tensor tensor(std::uint32_t dtype, std::uint64_t rows, std::uint64_t cols, void* data,
                          std::uint64_t nbytes) {
  dmem_plugin_tensor t{};
  t.struct_size = sizeof(t);
  t.dtype = dtype;
  t.device = DMEM_PLUGIN_DEVICE_CPU;
  t.rank = 2;
  t.shape[0] = rows;
  t.shape[1] = cols;
  t.data = data;
  t.nbytes = nbytes;
  return t;
}

}  // namespace

int main(int argc, char** argv) {
  const std::string json = dmem::bench::take_json_flag(argc, argv);
  dmem::bench::Report report("bench_gguf_plugin");
  std::size_t mib = 64;
  if (argc == 3 && std::string(argv[1]) == "--mib")
    mib = static_cast<std::size_t>(std::max(1, std::atoi(argv[2])));
  else if (argc != 1) {
    std::fprintf(stderr, "usage: bench_gguf_plugin [--mib N] [--json FILE]\n");
    return 2;
  }
  static const dmem_plugin_host host{sizeof(dmem_plugin_host), DMEM_PLUGIN_ABI_MAJOR,
                                     DMEM_PLUGIN_ABI_MINOR, nullptr, nullptr};
  auto plugin = dmem::detail::load_plugin(DMEM_BENCH_PLUGIN_GGUF, host);
  if (!plugin.has_value()) {
    std::fprintf(stderr, "%s\n", plugin.status().to_string().c_str());
    return 1;
  }
  const dmem_quantizer_vtable* q = plugin->descriptor->quantizer;
  const std::uint64_t cols = 4096;
  const std::uint64_t rows = std::max<std::uint64_t>(1, (mib << 20) / 4 / cols);
  std::vector<float> w(rows * cols), out(rows * cols), ref(rows * cols);
  for (std::size_t i = 0; i < w.size(); ++i) w[i] = std::sin(0.001f * static_cast<float>(i));
  const double memcpy_s =
      dmem::bench::seconds_per_call([&] { std::memcpy(out.data(), w.data(), w.size() * 4); });
  const double memcpy_gbs = static_cast<double>(w.size()) * 4 / memcpy_s / 1e9;
  std::printf("%llu x %llu f32 output (%zu MiB); memcpy %.2f GB/s (peer)\n",
              static_cast<unsigned long long>(rows), static_cast<unsigned long long>(cols),
              w.size() * 4 >> 20, memcpy_gbs);
  report.result("memcpy_gbs", memcpy_gbs);
  std::printf("%-8s %12s %14s %10s\n", "type", "out GB/s", "packed GB/s", "vs memcpy");
  for (const char* type : {"q8_0", "q4_0", "q4_1", "q5_0", "q5_1", "q2_k", "q3_k", "q4_k", "q5_k",
                           "q6_k", "iq4_nl", "mxfp4"}) {
    const char* key = "type";
    const dmem_plugin_params params{sizeof(params), 1, &key, &type};
    void* inst = nullptr;
    if (q->create(&params, &inst, nullptr) != DMEM_PLUGIN_OK) return 1;
    dmem_plugin_tensor src = tensor(DMEM_PLUGIN_DTYPE_F32, rows, cols, w.data(), w.size() * 4);
    std::uint64_t bytes = 0;
    if (q->stored_bytes(inst, &src, &bytes, nullptr) != DMEM_PLUGIN_OK) return 1;
    std::vector<std::uint8_t> packed(bytes);
    for (std::size_t i = 0; i < packed.size(); ++i)
      packed[i] = static_cast<std::uint8_t>(i * 131 + 7);  // dequantize-only types: any bytes
    dmem_plugin_tensor pt = tensor(DMEM_PLUGIN_DTYPE_F32, rows, cols, packed.data(), bytes);
    (void)q->quantize(inst, &src, &pt, nullptr, nullptr);  // real blocks where it quantizes
    dmem_plugin_tensor dst = tensor(DMEM_PLUGIN_DTYPE_F32, rows, cols, out.data(), out.size() * 4);
    const double s = dmem::bench::seconds_per_call(
        [&] { (void)q->dequantize(inst, &pt, &dst, nullptr, nullptr); });
    const double gbs = static_cast<double>(out.size()) * 4 / s / 1e9;
    std::printf("%-8s %12.2f %14.2f %9.2fx\n", type, gbs, static_cast<double>(bytes) / s / 1e9,
                gbs / memcpy_gbs);
    report.result(std::string(type) + " out GB/s", gbs);
    report.ratio(std::string(type) + " / memcpy", gbs / memcpy_gbs);
    q->destroy(inst);
  }
  return report.write(json) ? 0 : 1;
}
