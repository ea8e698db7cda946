// dmem::convert throughput on the CPU for the conversions the loader and the CPU linear path run
// on every weight, on each CPU path (scalar, AVX2), as a ratio to a memcpy of the same output
// bytes measured in the same run. Sizes: cache-resident (256 KiB and 1 MiB of f32) and large.
//
//   bench_convert [--mib N] [--json FILE]   (N MiB of f32 for the large size, default 64)
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "bench_cpu_timing.hpp"
#include "bench_report.hpp"
#include "core/cpu_features.hpp"
#include "dmem/dtype.hpp"

using dmem::DType;
using dmem::detail::CpuPath;

int main(int argc, char** argv) {
  const std::string json = dmem::bench::take_json_flag(argc, argv);
  dmem::bench::Report report("bench_convert");
  std::size_t mib = 64;
  if (argc == 3 && std::string(argv[1]) == "--mib")
    mib = static_cast<std::size_t>(std::max(1, std::atoi(argv[2])));
  else if (argc != 1) {
    std::fprintf(stderr, "usage: bench_convert [--mib N] [--json FILE]\n");
    return 2;
  }
  struct Conv {
    DType from, to;
  };
  const Conv convs[] = {
      {DType::bf16, DType::f32},     {DType::f16, DType::f32},     {DType::f8_e4m3, DType::f32},
      {DType::f8_e5m2, DType::f32},  {DType::f32, DType::bf16},    {DType::f32, DType::f16},
      {DType::bf16, DType::f8_e4m3}, {DType::f16, DType::f8_e4m3}, {DType::f32, DType::f8_e4m3}};
  const bool has_avx2 = dmem::detail::detected_cpu_path() == CpuPath::avx2;
  std::printf("CPU paths: scalar%s\n", has_avx2 ? ", avx2" : " (no AVX2 on this CPU)");
  for (const std::size_t f32_bytes : {std::size_t{256} << 10, std::size_t{1} << 20, mib << 20}) {
    const std::size_t n = f32_bytes / 4;
    const std::string size = f32_bytes >= (std::size_t{1} << 20)
                                 ? std::to_string(f32_bytes >> 20) + " MiB"
                                 : std::to_string(f32_bytes >> 10) + " KiB";
    std::vector<std::uint8_t> src(f32_bytes), dst(f32_bytes), ref(f32_bytes);
    // Finite inputs of every magnitude (random bits would be mostly huge or NaN as f32).
    for (std::size_t i = 0; i < n; ++i) {
      const float v = static_cast<float>(static_cast<int>(i * 2654435761u % 20001) - 10000) * 1e-3f;
      std::memcpy(src.data() + 4 * i, &v, 4);
    }
    std::printf("\n%s of f32 (%zu values)\n", size.c_str(), n);
    std::printf("%-16s %-7s %10s %12s %10s\n", "conversion", "path", "out GB/s", "memcpy GB/s",
                "vs memcpy");
    for (const auto& c : convs) {
      // Input: the source values in the `from` type (f32 -> narrow reads the f32 directly).
      std::vector<std::uint8_t> in(n * dmem::dtype_info(c.from).block_bytes);
      if (c.from == DType::f32)
        in = src;
      else
        (void)dmem::convert(DType::f32, src.data(), c.from, in.data(), n);
      const std::size_t out_bytes = n * dmem::dtype_info(c.to).block_bytes;
      const double mc =
          dmem::bench::seconds_per_call([&] { std::memcpy(dst.data(), ref.data(), out_bytes); });
      const double mc_gbs = static_cast<double>(out_bytes) / mc / 1e9;
      const std::string name =
          std::string(dmem::dtype_name(c.from)) + "->" + std::string(dmem::dtype_name(c.to));
      for (CpuPath path : {CpuPath::scalar, CpuPath::avx2}) {
        if (path == CpuPath::avx2 && !has_avx2) continue;
        dmem::detail::set_cpu_path_override(path);
        const double s = dmem::bench::seconds_per_call(
            [&] { (void)dmem::convert(c.from, in.data(), c.to, dst.data(), n); });
        const double gbs = static_cast<double>(out_bytes) / s / 1e9;
        const char* pname = path == CpuPath::avx2 ? "avx2" : "scalar";
        std::printf("%-16s %-7s %10.2f %12.2f %9.2fx\n", name.c_str(), pname, gbs, mc_gbs,
                    gbs / mc_gbs);
        const std::string key = name + " " + pname + " " + size;
        report.result(key + " out GB/s", gbs);
        report.result(key + " memcpy GB/s", mc_gbs);
        report.ratio(key + " vs memcpy", gbs / mc_gbs);
      }
      dmem::detail::set_cpu_path_override(std::nullopt);
    }
  }
  return report.write(json) ? 0 : 1;
}
