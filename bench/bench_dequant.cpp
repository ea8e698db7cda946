// Dequantization throughput on the CPU, on each CPU path (scalar, AVX2), as a ratio to memcpy of
// the same f32 output measured in the same run (the physical limit for writing that many bytes).
// Sizes: cache-resident (1 MiB of f32) and large.
//
//   bench_dequant [--mib N] [--json FILE]   (N MiB of f32 output for the large size, default 64)
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "bench_cpu_timing.hpp"
#include "bench_report.hpp"
#include "core/cpu_features.hpp"
#include "dmem/block_quant.hpp"

using dmem::detail::CpuPath;

int main(int argc, char** argv) {
  const std::string json = dmem::bench::take_json_flag(argc, argv);
  dmem::bench::Report report("bench_dequant");
  std::size_t mib = 64;
  if (argc == 3 && std::string(argv[1]) == "--mib")
    mib = static_cast<std::size_t>(std::max(1, std::atoi(argv[2])));
  else if (argc != 1) {
    std::fprintf(stderr, "usage: bench_dequant [--mib N] [--json FILE]\n");
    return 2;
  }
  const bool has_avx2 = dmem::detail::detected_cpu_path() == CpuPath::avx2;
  std::printf("CPU paths: scalar%s\n", has_avx2 ? ", avx2" : " (no AVX2 on this CPU)");
  for (const std::size_t bytes : {std::size_t{1} << 20, mib << 20}) {
    const std::size_t n = bytes / 4 / 256 * 256;  // values, a multiple of every block
    const std::string size = std::to_string(bytes >> 20) + " MiB";
    std::vector<float> out(n), ref(n);
    for (std::size_t i = 0; i < n; ++i) ref[i] = static_cast<float>(i % 97) * 0.01f;
    const double memcpy_s =
        dmem::bench::seconds_per_call([&] { std::memcpy(out.data(), ref.data(), n * 4); });
    const double memcpy_gbs = static_cast<double>(n) * 4 / memcpy_s / 1e9;
    std::printf("\n%s of f32 output; memcpy %.2f GB/s (peer)\n", size.c_str(), memcpy_gbs);
    report.result("memcpy GB/s " + size, memcpy_gbs);
    std::printf("%-8s %-7s %12s %14s %10s\n", "type", "path", "out GB/s", "packed GB/s",
                "vs memcpy");
    for (dmem::DType t :
         {dmem::DType::q8_0, dmem::DType::q4_0, dmem::DType::q4_1, dmem::DType::q5_0,
          dmem::DType::q4_k, dmem::DType::q5_k, dmem::DType::q6_k, dmem::DType::q2_k}) {
      const auto& info = dmem::dtype_info(t);
      std::vector<std::uint8_t> packed(n / info.block_elems * info.block_bytes);
      for (std::size_t i = 0; i < packed.size(); ++i)
        packed[i] = static_cast<std::uint8_t>(i * 131 + 7);
      // keep fp16 scale fields finite: zero the top byte pattern that would make inf/NaN
      for (std::size_t i = 1; i < packed.size(); i += 2) packed[i] &= 0x3B;
      for (CpuPath path : {CpuPath::scalar, CpuPath::avx2}) {
        if (path == CpuPath::avx2 && !has_avx2) continue;
        dmem::detail::set_cpu_path_override(path);
        const double s = dmem::bench::seconds_per_call(
            [&] { (void)dmem::dequantize(t, packed.data(), out.data(), n); });
        const double gbs = static_cast<double>(n) * 4 / s / 1e9;
        const char* pname = path == CpuPath::avx2 ? "avx2" : "scalar";
        std::printf("%-8s %-7s %12.2f %14.2f %9.2fx\n", std::string(info.name).c_str(), pname, gbs,
                    static_cast<double>(packed.size()) / s / 1e9, gbs / memcpy_gbs);
        const std::string key = std::string(info.name) + " " + pname + " " + size;
        report.result(key + " out GB/s", gbs);
        report.ratio(key + " vs memcpy", gbs / memcpy_gbs);
      }
      dmem::detail::set_cpu_path_override(std::nullopt);
    }
  }
  return report.write(json) ? 0 : 1;
}
