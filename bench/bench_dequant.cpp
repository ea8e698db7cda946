// Dequantization throughput on the CPU, as a ratio to memcpy of the same f32 output measured in
// the same run (the physical limit for writing that many bytes).
//
//   bench_dequant [--mib N] [--json FILE]   (N MiB of f32 output per type, default 64)
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "bench_report.hpp"
#include "dmem/block_quant.hpp"

using Clock = std::chrono::steady_clock;

namespace {
template <class F>
double best_seconds(F&& f, int reps) {
  double best = 1e30;
  for (int r = 0; r < reps; ++r) {
    auto t0 = Clock::now();
    f();
    best = std::min(best, std::chrono::duration<double>(Clock::now() - t0).count());
  }
  return best;
}
}  // namespace

int main(int argc, char** argv) {
  const std::string json = dmem::bench::take_json_flag(argc, argv);
  dmem::bench::Report report("bench_dequant");
  std::size_t mib = 64;
  if (argc == 3 && std::string(argv[1]) == "--mib")
    mib = std::max(1, std::atoi(argv[2]));
  else if (argc != 1) {
    std::fprintf(stderr, "usage: bench_dequant [--mib N] [--json FILE]\n");
    return 2;
  }
  const std::size_t n = mib * (1u << 20) / 4 / 256 * 256;  // values, a multiple of every block
  std::vector<float> out(n), ref(n);
  for (std::size_t i = 0; i < n; ++i) ref[i] = static_cast<float>(i % 97) * 0.01f;
  const double memcpy_s = best_seconds([&] { std::memcpy(out.data(), ref.data(), n * 4); }, 5);
  const double memcpy_gbs = static_cast<double>(n) * 4 / memcpy_s / 1e9;
  std::printf("memcpy of %zu MiB f32: %.2f GB/s (peer)\n", mib, memcpy_gbs);
  report.result("memcpy GB/s", memcpy_gbs);
  std::printf("%-8s %12s %14s %10s\n", "type", "out GB/s", "packed GB/s", "vs memcpy");
  for (dmem::DType t :
       {dmem::DType::q8_0, dmem::DType::q4_0, dmem::DType::q4_1, dmem::DType::q5_0,
        dmem::DType::q4_k, dmem::DType::q5_k, dmem::DType::q6_k, dmem::DType::q2_k}) {
    const auto& info = dmem::dtype_info(t);
    std::vector<std::uint8_t> packed(n / info.block_elems * info.block_bytes);
    for (std::size_t i = 0; i < packed.size(); ++i)
      packed[i] = static_cast<std::uint8_t>(i * 131 + 7);
    // keep fp16 scale fields finite: zero the top byte pattern that would make inf/NaN
    for (std::size_t i = 1; i < packed.size(); i += 2) packed[i] &= 0x3B;
    const double s =
        best_seconds([&] { (void)dmem::dequantize(t, packed.data(), out.data(), n); }, 3);
    const double gbs = static_cast<double>(n) * 4 / s / 1e9;
    std::printf("%-8s %12.2f %14.2f %9.2fx\n", std::string(info.name).c_str(), gbs,
                static_cast<double>(packed.size()) / s / 1e9, gbs / memcpy_gbs);
    report.result(std::string(info.name) + " out GB/s", gbs);
    report.ratio(std::string(info.name) + " vs memcpy", gbs / memcpy_gbs);
  }
  return report.write(json) ? 0 : 1;
}
