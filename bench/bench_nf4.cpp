// NF4 CPU dequantization throughput (the plugin's unpack, plugins/nf4/nf4_layout.hpp) as a
// ratio to memcpy of the same output bytes measured in the same run.
//
//   bench_nf4 [--mib N] [--json FILE]   (N MiB of f32 output, default 64)
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "bench_cpu_timing.hpp"
#include "bench_report.hpp"
#include "nf4/nf4_layout.hpp"

int main(int argc, char** argv) {
  const std::string json = dmem::bench::take_json_flag(argc, argv);
  dmem::bench::Report report("bench_nf4");
  std::size_t mib = 64;
  if (argc == 3 && std::string(argv[1]) == "--mib")
    mib = static_cast<std::size_t>(std::max(1, std::atoi(argv[2])));
  else if (argc != 1) {
    std::fprintf(stderr, "usage: bench_nf4 [--mib N] [--json FILE]\n");
    return 2;
  }
  const std::size_t n = (mib << 20) / 4 / 4096 * 4096;
  std::vector<float> w(n), out(n);
  for (std::size_t i = 0; i < n; ++i) w[i] = static_cast<float>(i % 97) * 0.01f - 0.4f;
  std::printf("%zu MiB of f32 output\n", mib);
  std::printf("%-14s %-5s %10s %10s\n", "variant", "out", "GB/s", "vs memcpy");
  for (const bool nested : {false, true}) {
    const auto l = dmem_nf4::make_layout(dmem_nf4::QuantType::nf4, n, 64, nested);
    std::vector<std::uint8_t> packed(l.bytes);
    dmem_nf4::pack(
        l, [&](std::uint64_t i) { return w[i]; }, packed.data());
    for (const auto t : {dmem_nf4::OutType::f32, dmem_nf4::OutType::bf16}) {
      const std::size_t bytes = n * (t == dmem_nf4::OutType::f32 ? 4 : 2);
      const double memcpy_s =
          dmem::bench::seconds_per_call([&] { std::memcpy(out.data(), w.data(), bytes); });
      const double s =
          dmem::bench::seconds_per_call([&] { dmem_nf4::unpack(l, packed.data(), t, out.data()); });
      const char* tn = t == dmem_nf4::OutType::f32 ? "f32" : "bf16";
      const std::string key = std::string(nested ? "nf4-dq " : "nf4 ") + tn;
      const double gbs = static_cast<double>(bytes) / s / 1e9;
      std::printf("%-14s %-5s %10.2f %9.2fx\n", nested ? "nf4 (dq)" : "nf4", tn, gbs, memcpy_s / s);
      report.result(key + " GB/s", gbs);
      report.ratio(key + " vs memcpy", memcpy_s / s);
    }
  }
  return report.write(json) ? 0 : 1;
}
