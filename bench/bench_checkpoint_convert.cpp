// dmem convert_model throughput (source bytes per second) per quantizer, as a ratio to a plain
// read + write of the same checkpoint's bytes (pread each tensor, write it to a new file) in the
// same run, on a generated bf16 checkpoint of [out, in] linear weights.
//
//   bench_checkpoint_convert [--mib N] [--plugins DIR] [--json FILE]
//   (N MiB of bf16 weights, default 256; DIR: the stock plugins, default <exe>/../bin/plugins)
#include <fcntl.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "bench_report.hpp"
#include "dmem/convert.hpp"
#include "dmem/plugin_registry.hpp"
#include "dmem/tensor_source.hpp"
#include "dmem/writer.hpp"

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

namespace {

double seconds_since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

// The peer: every tensor read with pread and appended to a new file, then fsync'ed.
double plain_copy_seconds(const dmem::Model& model, const std::string& out) {
  const dmem::Component& c = model.components.front();
  auto src = dmem::TensorSource::open(c);
  if (!src) return -1;
  const auto start = Clock::now();
  const int fd = ::open(out.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return -1;
  std::vector<unsigned char> buf;
  bool ok = true;
  for (const dmem::TensorInfo& t : c.tensors) {
    buf.resize(t.nbytes);
    ok = ok && src->read(t, buf.data()).is_ok();
    ok = ok && ::write(fd, buf.data(), buf.size()) == static_cast<ssize_t>(buf.size());
  }
  ok = ::fsync(fd) == 0 && ok;
  ::close(fd);
  return ok ? seconds_since(start) : -1;
}

}  // namespace

int main(int argc, char** argv) {
  const std::string json = dmem::bench::take_json_flag(argc, argv);
  std::uint64_t mib = 256;
  std::string plugins = (fs::path(argv[0]).parent_path() / ".." / "bin" / "plugins").string();
  for (int i = 1; i + 1 < argc; i += 2) {
    if (std::strcmp(argv[i], "--mib") == 0) mib = std::strtoull(argv[i + 1], nullptr, 10);
    if (std::strcmp(argv[i], "--plugins") == 0) plugins = argv[i + 1];
  }
  if (mib == 0) mib = 1;
  const fs::path dir = fs::temp_directory_path() / fmt::format("dmem-bench-convert-{}", ::getpid());
  fs::create_directories(dir);
  struct Cleanup {
    fs::path p;
    ~Cleanup() {
      std::error_code ec;
      fs::remove_all(p, ec);
    }
  } cleanup{dir};

  // [2048, 2048] bf16 weights (8 MiB each) until N MiB.
  const std::uint64_t rows = 2048, cols = 2048;
  std::vector<std::uint16_t> w(rows * cols);
  for (std::size_t i = 0; i < w.size(); ++i)
    w[i] = static_cast<std::uint16_t>(0x3C00u + (i * 2654435761u >> 20) % 0x300u) ^
           static_cast<std::uint16_t>((i & 1u) << 15);
  std::vector<dmem::TensorData> tensors;
  const std::uint64_t count = std::max<std::uint64_t>(1, mib / 8);
  for (std::uint64_t i = 0; i < count; ++i)
    tensors.push_back({fmt::format("blocks.{}.proj.weight", i),
                       dmem::DType::bf16,
                       {rows, cols},
                       w.data(),
                       w.size() * 2});
  const std::string in = (dir / "in.safetensors").string();
  if (!dmem::write_safetensors(in, tensors).is_ok()) return 1;
  auto model = dmem::open_model(in);
  if (!model) return 1;
  const double bytes = static_cast<double>(count * w.size() * 2);

  dmem::PluginRegistry registry;
  dmem::PluginSearch search;
  search.paths.push_back(plugins);
  registry.discover(search);

  dmem::bench::Report report("bench_checkpoint_convert");
  const double plain = plain_copy_seconds(*model, (dir / "plain.bin").string());
  if (plain <= 0) return 1;
  const double plain_gbs = bytes / plain / 1e9;
  report.result("plain read+write GB/s", plain_gbs);
  std::printf("checkpoint %.0f MiB bf16 (%llu tensors [2048, 2048])\n", bytes / (1 << 20),
              static_cast<unsigned long long>(count));
  std::printf("  %-8s %8.2f GB/s  (peer)\n", "copy", plain_gbs);
  for (const char* q : {"q8_0", "q4_k", "nf4", "nf4-dq", "int8", "fp8"}) {
    auto choice = dmem::resolve_quantizer(q);
    if (!choice || registry.find(choice->plugin) == nullptr) {
      std::printf("  %-8s (plugin %s not found in %s)\n", q, choice ? choice->plugin.c_str() : "?",
                  plugins.c_str());
      continue;
    }
    choice->component = std::string(1, '*');
    dmem::ConvertOptions o;
    o.quantize.push_back(*choice);
    o.plugins = &registry;
    const bool gguf = choice->plugin == "dmem.quantizer.gguf";
    o.format = gguf ? dmem::ConvertFormat::gguf : dmem::ConvertFormat::safetensors;
    const std::string out = (dir / (std::string(q) + (gguf ? ".gguf" : ".safetensors"))).string();
    const auto start = Clock::now();
    auto r = dmem::convert_model(*model, out, o);
    const double s = seconds_since(start);
    if (!r) {
      std::printf("  %-8s failed: %s\n", q, r.status().to_string().c_str());
      continue;
    }
    const double gbs = bytes / s / 1e9;
    std::printf("  %-8s %8.2f GB/s  %.2fx of copy  (%.1f MiB out)\n", q, gbs, gbs / plain_gbs,
                static_cast<double>(r->bytes_out) / (1 << 20));
    report.result(fmt::format("convert GB/s {}", q), gbs);
    report.ratio(fmt::format("convert {} vs plain read+write", q), gbs / plain_gbs);
    fs::remove(out);
  }
  return report.write(json) ? 0 : 1;
}
