// Opening a 9-shard, ~41 GB (sparse) Qwen-Image transformer checkpoint: time and bytes read.
//
// Peer measured in the same run: a plain pread of exactly the 9 headers and the index (the least
// any reader must read). Reports open+inspect time, bytes read (from /proc/self/io rchar) and both
// as ratios to the peer. Goal: milliseconds, and no tensor data read.
//
//   bench_open [--dir DIR] [--repeat N] [--json FILE]
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "bench_report.hpp"
#include "dmem/catalog.hpp"
#include "dmem/model.hpp"
#include "dmem/module_tree.hpp"

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

namespace {

std::uint64_t rchar() {
  std::ifstream io("/proc/self/io");
  std::string key;
  std::uint64_t value = 0;
  while (io >> key >> value)
    if (key == "rchar:") return value;
  return 0;
}

// Writes shard headers by hand and extends each file sparsely to its full size: the tensor data
// is never written (nor read by a correct reader).
std::vector<std::string> make_checkpoint(const fs::path& dir, const dmem::Component& c,
                                         int shards) {
  fs::create_directories(dir);
  std::uint64_t total = 0;
  for (const auto& t : c.tensors) total += t.nbytes;
  const std::uint64_t per = total / static_cast<std::uint64_t>(shards) + 1;
  std::vector<std::string> files;
  nlohmann::json index;
  index["metadata"]["total_size"] = total;
  std::size_t i = 0;
  for (int s = 0; s < shards; ++s) {
    auto name = fmt::format("diffusion_pytorch_model-{:05d}-of-{:05d}.safetensors", s + 1, shards);
    nlohmann::json header;
    header["__metadata__"] = {{"format", "pt"}};
    std::uint64_t off = 0;
    for (; i < c.tensors.size() && (off < per || s == shards - 1); ++i) {
      const auto& t = c.tensors[i];
      header[t.name] = {{"dtype", std::string(dmem::dtype_info(t.dtype).safetensors_name)},
                        {"shape", t.shape},
                        {"data_offsets", {off, off + t.nbytes}}};
      index["weight_map"][t.name] = name;
      off += t.nbytes;
    }
    std::string text = header.dump();
    text.append((8 - text.size() % 8) % 8, ' ');
    const std::uint64_t n = text.size();
    auto path = (dir / name).string();
    int fd = ::open(path.c_str(), O_CREAT | O_TRUNC | O_WRONLY, 0644);
    if (fd < 0 || ::write(fd, &n, 8) != 8 ||
        ::write(fd, text.data(), text.size()) != static_cast<ssize_t>(text.size()) ||
        ::ftruncate(fd, static_cast<off_t>(8 + n + off)) != 0) {
      std::fprintf(stderr, "bench_open: cannot write %s: %s\n", path.c_str(), std::strerror(errno));
      std::exit(1);
    }
    ::close(fd);
    files.push_back(path);
  }
  std::ofstream(dir / "diffusion_pytorch_model.safetensors.index.json") << index.dump(2) << "\n";
  return files;
}

// The peer: read exactly the bytes of each header plus the index, nothing else.
std::uint64_t plain_header_read(const fs::path& dir, const std::vector<std::string>& files) {
  std::uint64_t bytes = 0;
  std::vector<char> buf;
  for (const auto& f : files) {
    int fd = ::open(f.c_str(), O_RDONLY);
    std::uint64_t n = 0;
    if (::pread(fd, &n, 8, 0) != 8) std::exit(1);
    buf.resize(n);
    if (::pread(fd, buf.data(), n, 8) != static_cast<ssize_t>(n)) std::exit(1);
    ::close(fd);
    bytes += 8 + n;
  }
  std::ifstream in(dir / "diffusion_pytorch_model.safetensors.index.json", std::ios::binary);
  std::string idx((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  return bytes + idx.size();
}

}  // namespace

int main(int argc, char** argv) {
  const std::string json = dmem::bench::take_json_flag(argc, argv);
  dmem::bench::Report report("bench_open");
  fs::path dir = fs::temp_directory_path() / "dmem-bench-open";
  int repeat = 20;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--dir" && i + 1 < argc)
      dir = argv[++i];
    else if (a == "--repeat" && i + 1 < argc)
      repeat = std::max(1, std::atoi(argv[++i]));
    else {
      std::fprintf(stderr, "usage: bench_open [--dir DIR] [--repeat N] [--json FILE]\n");
      return 2;
    }
  }
  auto model = dmem::catalog_model("qwen-image");
  if (!model) {
    std::fprintf(stderr, "bench_open: %s\n", model.status().to_string().c_str());
    return 1;
  }
  const auto& transformer = *model->find("transformer");
  const auto files = make_checkpoint(dir, transformer, 9);
  const auto index = (dir / "diffusion_pytorch_model.safetensors.index.json").string();
  std::uint64_t logical = 0;
  for (const auto& f : files) logical += fs::file_size(f);

  double best_open = 1e30, best_peer = 1e30;
  std::uint64_t open_bytes = 0, peer_bytes = 0, tensors = 0, blocks = 0;
  for (int r = 0; r < repeat; ++r) {
    auto before = rchar();
    auto t0 = Clock::now();
    peer_bytes = plain_header_read(dir, files);
    auto t1 = Clock::now();
    best_peer = std::min(best_peer, std::chrono::duration<double>(t1 - t0).count());
    (void)before;

    auto b0 = rchar();
    auto t2 = Clock::now();
    auto opened = dmem::open_model(index);
    if (!opened) {
      std::fprintf(stderr, "bench_open: %s\n", opened.status().to_string().c_str());
      return 1;
    }
    auto summary = dmem::summarize(opened->components.front());
    auto t3 = Clock::now();
    open_bytes = rchar() - b0;
    best_open = std::min(best_open, std::chrono::duration<double>(t3 - t2).count());
    tensors = summary.tensors;
    blocks = summary.blocks.size();
  }
  std::printf("checkpoint: 9 shards, %llu tensors, %.2f GB logical (sparse), %llu blocks\n",
              static_cast<unsigned long long>(tensors), static_cast<double>(logical) / 1e9,
              static_cast<unsigned long long>(blocks));
  std::printf("open+inspect   : %8.3f ms  read %10llu bytes\n", best_open * 1e3,
              static_cast<unsigned long long>(open_bytes));
  std::printf("peer (headers) : %8.3f ms  read %10llu bytes\n", best_peer * 1e3,
              static_cast<unsigned long long>(peer_bytes));
  std::printf(
      "ratio time %.2fx, bytes %.3fx of the peer; tensor data read: %s (%.6f%% of the "
      "checkpoint)\n",
      best_open / best_peer, static_cast<double>(open_bytes) / static_cast<double>(peer_bytes),
      open_bytes < logical / 1000 ? "none" : "YES",
      100.0 * static_cast<double>(open_bytes) / static_cast<double>(logical));
  report.result("open ms", best_open * 1e3);
  report.result("peer ms", best_peer * 1e3);
  report.result("bytes read", static_cast<double>(open_bytes));
  report.ratio("time x peer", best_open / best_peer);
  report.ratio("bytes x peer", static_cast<double>(open_bytes) / static_cast<double>(peer_bytes));
  std::error_code ec;
  fs::remove_all(dir, ec);
  return report.write(json) ? 0 : 1;
}
