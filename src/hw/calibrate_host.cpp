// Host measurements for `dmem calibrate`: memcpy bandwidth, OpenBLAS sgemm throughput, and the
// read rate of a model's own files (warm, and cold after dropping their cached pages).
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <memory>
#include <new>

#include "format/file_io.hpp"
#include "hw/calibrate.hpp"

#if DMEM_HAVE_OPENBLAS
#include <cblas.h>
#endif

namespace dmem::detail {

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

Status no_memory(std::uint64_t bytes, const char* what) {
  std::string msg = "could not allocate ";
  msg += std::to_string(bytes >> 20);
  msg += " MiB for the ";
  msg += what;
  msg += " measurement";
  return Status(Errc::out_of_memory, std::move(msg))
      .with_rule("calibrate.memory")
      .with_hint("run with --quick (smaller buffers), or free some RAM");
}

// Fills so every page is touched (first-touch faults would otherwise be timed) and the values are
// ordinary numbers (denormals slow some sgemm kernels).
void fill(float* p, std::uint64_t n) {
  for (std::uint64_t i = 0; i < n; ++i) p[i] = static_cast<float>((i * 7u) % 13u) * 0.125f - 0.75f;
}

}  // namespace

Result<double> measure_memcpy_gbps(std::uint64_t bytes, int reps) noexcept {
  std::unique_ptr<unsigned char[]> a(new (std::nothrow) unsigned char[bytes]);
  std::unique_ptr<unsigned char[]> b(new (std::nothrow) unsigned char[bytes]);
  if (!a || !b) return no_memory(2 * bytes, "memcpy");
  std::memset(a.get(), 1, bytes);
  std::memset(b.get(), 2, bytes);
  double best = 0;
  for (int r = 0; r < std::max(1, reps); ++r) {
    const auto t0 = Clock::now();
    std::memcpy(b.get(), a.get(), bytes);
    const double s = seconds_since(t0);
    if (s > 0) best = std::max(best, static_cast<double>(bytes) / s / 1e9);
    a[r % bytes] = b[(r * 31) % bytes];  // keeps the copies from being elided
  }
  return best;
}

bool have_openblas() noexcept {
#if DMEM_HAVE_OPENBLAS
  return true;
#else
  return false;
#endif
}

Result<double> measure_sgemm_gflops(std::uint64_t m, std::uint64_t n, std::uint64_t k,
                                    int reps) noexcept {
  if (m == 0 || n == 0 || k == 0 || m > 0x7fffffffu || n > 0x7fffffffu || k > 0x7fffffffu)
    return Status(Errc::invalid_argument, "sgemm shape out of range").with_rule("calibrate.shape");
  std::unique_ptr<float[]> a(new (std::nothrow) float[m * k]);
  std::unique_ptr<float[]> b(new (std::nothrow) float[n * k]);
  std::unique_ptr<float[]> c(new (std::nothrow) float[m * n]);
  if (!a || !b || !c) return no_memory((m * k + n * k + m * n) * 4, "sgemm");
  fill(a.get(), m * k);
  fill(b.get(), n * k);
  fill(c.get(), m * n);
  const auto mi = static_cast<int>(m), ni = static_cast<int>(n), ki = static_cast<int>(k);
  auto once = [&] {
#if DMEM_HAVE_OPENBLAS
    // The CPU device's linear: row-major x[m,k] times Wᵀ with W stored [n,k].
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, mi, ni, ki, 1.0f, a.get(), ki, b.get(), ki,
                0.0f, c.get(), ni);
#else
    for (int i = 0; i < mi; ++i)
      for (int j = 0; j < ni; ++j) {
        float s = 0;
        for (int p = 0; p < ki; ++p) s += a[i * k + p] * b[j * k + p];
        c[i * n + j] = s;
      }
#endif
  };
  once();  // warm-up: OpenBLAS starts its threads and sizes its buffers on the first call
  double best = 0;
  const double flops =
      2.0 * static_cast<double>(m) * static_cast<double>(n) * static_cast<double>(k);
  for (int r = 0; r < std::max(1, reps); ++r) {
    const auto t0 = Clock::now();
    once();
    const double s = seconds_since(t0);
    if (s > 0) best = std::max(best, flops / s / 1e9);
  }
  return best;
}

Result<DiskReadRate> measure_disk_read(const std::vector<std::string>& files,
                                       std::uint64_t max_bytes, bool cold) noexcept {
  constexpr std::uint64_t kChunk = 16u << 20;
  std::unique_ptr<unsigned char[]> buf(new (std::nothrow) unsigned char[kChunk]);
  if (!buf) return no_memory(kChunk, "disk read");
  DiskReadRate rate;
  rate.cold = cold;
  double seconds = 0;
  for (const std::string& path : files) {
    if (rate.bytes >= max_bytes) break;
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return os_error("open", path, errno);
    // Dropping clean cached pages needs no privilege; the cold read then comes from the device.
    if (cold) (void)::posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
    (void)::posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
    const auto t0 = Clock::now();
    while (rate.bytes < max_bytes) {
      const std::uint64_t want = std::min(kChunk, max_bytes - rate.bytes);
      const ssize_t got = ::read(fd, buf.get(), want);
      if (got < 0 && errno == EINTR) continue;
      if (got < 0) {
        const int err = errno;
        ::close(fd);
        return os_error("read", path, err);
      }
      if (got == 0) break;
      rate.bytes += static_cast<std::uint64_t>(got);
    }
    seconds += seconds_since(t0);
    ::close(fd);
  }
  if (rate.bytes == 0)
    return Status(Errc::invalid_argument, "the model's files hold no bytes to read")
        .with_rule("calibrate.model")
        .with_hint("give a checkpoint with weights on disk (--model PATH)");
  rate.gbps = seconds > 0 ? static_cast<double>(rate.bytes) / seconds / 1e9 : 0;
  return rate;
}

}  // namespace dmem::detail
