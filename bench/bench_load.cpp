// Loading and streaming on the CPU device, as ratios to peers measured in the same run:
//  * load GB/s of a Session (resident; parked in pinned RAM; fp8 layerwise cast) against a plain
//    pread of the same file into fresh memory (warm page cache: the memcpy-limited rate a load
//    can reach; goal >= 0.6x);
//  * load GB/s with SessionOptions::direct_io against a plain O_DIRECT read of the same file
//    (both read the disk, not the page cache);
//  * seconds per step of every placement against the resident run of the same workload.
//
//   bench_load [--mib N] [--json FILE]   (checkpoint of about N MiB, default 256)
#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "bench_report.hpp"
#include "dmem/session.hpp"
#include "support/runtime_fixture.hpp"

namespace {

double now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// pread of the whole file into a fresh anonymous mapping (page faults included, as in a load).
// `direct`: with O_DIRECT (the page cache bypassed: the rate of the disk itself), 16 MiB reads
// into page-aligned memory.
double plain_read_seconds(const std::string& path, std::uint64_t bytes, bool direct = false) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | (direct ? O_DIRECT : 0));
  if (fd < 0) return 0;
  const double t0 = now();
  void* p = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  std::uint64_t done = 0;
  while (p != MAP_FAILED && done < bytes) {
    const ssize_t n =
        ::pread(fd, static_cast<char*>(p) + done, std::min<std::uint64_t>(bytes - done, 16u << 20),
                static_cast<off_t>(done));
    if (n <= 0) break;
    done += static_cast<std::uint64_t>(n);
  }
  const double t = now() - t0;
  if (p != MAP_FAILED) ::munmap(p, bytes);
  ::close(fd);
  return t;
}

dmem::Placement placement(dmem::PlacementKind kind) {
  dmem::Placement p;
  p.kind = kind;
  return p;
}

}  // namespace

int main(int argc, char** argv) {
  const std::string json = dmem::bench::take_json_flag(argc, argv);
  dmem::bench::Report report("bench_load");
  std::uint64_t mib = 256;
  if (argc == 3 && std::string(argv[1]) == "--mib") {
    mib = static_cast<std::uint64_t>(std::max(8, std::atoi(argv[2])));
  } else if (argc != 1) {
    std::fprintf(stderr, "usage: bench_load [--mib N] [--json FILE]\n");
    return 2;
  }
  const char* tmp = std::getenv("TMPDIR");
  const std::filesystem::path dir =
      std::filesystem::path(tmp != nullptr && *tmp != '\0' ? tmp : "/tmp") /
      ("dmem-bench-load-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  const std::string path = (dir / "m.safetensors").string();
  // Blocks of width 1024 hold about 15 MiB each (bf16, f16 and f32 tensors mixed).
  const auto blocks = static_cast<std::uint32_t>(std::max<std::uint64_t>(2, mib / 15));
  const dmem::Model model = dmem::test::make_block_model(path, blocks, 1024);
  std::uint64_t bytes = 0;
  for (const auto& t : model.components[0].tensors) bytes += t.nbytes;
  const std::uint64_t file_bytes = std::filesystem::file_size(path);
  std::printf("checkpoint: %.1f MiB of weights in %u blocks\n",
              static_cast<double>(bytes) / 1048576.0, blocks);

  plain_read_seconds(path, file_bytes);  // warm the page cache
  double best_plain = 1e30;
  for (int i = 0; i < 3; ++i)
    best_plain = std::min(best_plain, plain_read_seconds(path, file_bytes));
  const double plain_gbs = static_cast<double>(file_bytes) / best_plain / 1e9;
  std::printf("plain pread into fresh memory: %.2f GB/s (peer)\n", plain_gbs);
  report.result("plain read GB/s", plain_gbs);

  dmem::Storage cast;
  cast.kind = dmem::StorageKind::layerwise_cast;
  struct Load {
    const char* name;
    dmem::Placement placement;
    dmem::Storage storage;
  };
  const Load loads[] = {{"resident", placement(dmem::PlacementKind::resident), {}},
                        {"parked pinned", placement(dmem::PlacementKind::group_offload), {}},
                        {"resident fp8 cast", placement(dmem::PlacementKind::resident), cast}};
  // Direct I/O reads the disk itself: its peer is a plain O_DIRECT read of the same file.
  const double direct_plain = plain_read_seconds(path, file_bytes, true);
  if (direct_plain > 0) {
    dmem::SessionOptions options;
    options.direct_io = true;
    double best = 1e30;
    bool active = false;
    for (int i = 0; i < 3; ++i) {
      auto session = dmem::Session::open(
          model, dmem::test::one_component(placement(dmem::PlacementKind::resident)), options);
      if (!session) {
        std::fprintf(stderr, "%s\n", session.status().to_string().c_str());
        return 1;
      }
      best = std::min(best, session->stats().load_seconds);
      active = session->stats().direct_io;
    }
    const double peer = static_cast<double>(file_bytes) / direct_plain / 1e9;
    const double gbs = static_cast<double>(bytes) / best / 1e9;
    std::printf(
        "plain O_DIRECT read: %.2f GB/s; resident load with direct I/O%s: %.2f GB/s "
        "(%.2fx)\n",
        peer, active ? "" : " (not available here: buffered)", gbs, gbs / peer);
    report.result("plain direct read GB/s", peer);
    report.result("load GB/s resident direct io", gbs);
    report.ratio("load resident direct io vs plain direct read", gbs / peer);
  }
  std::printf("%-20s %10s %10s\n", "load", "GB/s", "vs plain");
  for (const Load& l : loads) {
    double best = 1e30;
    for (int i = 0; i < 3; ++i) {
      auto session = dmem::Session::open(model, dmem::test::one_component(l.placement, l.storage));
      if (!session) {
        std::fprintf(stderr, "%s\n", session.status().to_string().c_str());
        return 1;
      }
      best = std::min(best, session->stats().load_seconds);
    }
    const double gbs = static_cast<double>(bytes) / best / 1e9;
    std::printf("%-20s %10.2f %9.2fx\n", l.name, gbs, gbs / plain_gbs);
    report.result(std::string("load GB/s ") + l.name, gbs);
    report.ratio(std::string("load ") + l.name + " vs plain read", gbs / plain_gbs);
  }

  // Per-step time of each placement against resident (same workload, 256 tokens).
  struct Run {
    const char* name;
    dmem::Placement placement;
  };
  dmem::Placement partial = placement(dmem::PlacementKind::partial);
  partial.resident_blocks = blocks / 2;
  dmem::Placement sync = placement(dmem::PlacementKind::group_offload);
  sync.use_stream = false;
  const Run runs[] = {{"resident", placement(dmem::PlacementKind::resident)},
                      {"group offload", placement(dmem::PlacementKind::group_offload)},
                      {"group offload sync", sync},
                      {"partial half", partial},
                      {"sequential", placement(dmem::PlacementKind::sequential)},
                      {"model offload", placement(dmem::PlacementKind::model_offload)},
                      {"disk", placement(dmem::PlacementKind::disk)},
                      {"cpu", placement(dmem::PlacementKind::cpu)}};
  double resident_step = 0;
  std::printf("\n%-20s %10s %12s\n", "placement", "s/step", "vs resident");
  for (const Run& r : runs) {
    auto session = dmem::Session::open(model, dmem::test::one_component(r.placement));
    if (!session) {
      std::fprintf(stderr, "%s\n", session.status().to_string().c_str());
      return 1;
    }
    (void)dmem::test::run_workload(*session, 1, 256);  // records the order
    const double t0 = now();
    const int steps = 3;
    auto sum = dmem::test::run_workload(*session, steps, 256);
    const double step = (now() - t0) / steps;
    if (!sum) {
      std::fprintf(stderr, "%s\n", sum.status().to_string().c_str());
      return 1;
    }
    if (resident_step == 0) resident_step = step;
    std::printf("%-20s %10.4f %11.2fx\n", r.name, step, step / resident_step);
    report.result(std::string("s/step ") + r.name, step);
    report.ratio(std::string("step ") + r.name + " vs resident", step / resident_step);
  }
  std::error_code ec;
  std::filesystem::remove_all(dir, ec);
  return report.write(json) ? 0 : 1;
}
