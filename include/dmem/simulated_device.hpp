// SimulatedDevice: the memory of a compute device shared with other programs, played in host
// memory. The CPU device draws its allocations from one (SessionOptions::simulated_device), a
// test or a benchmark plays the other programs (a renderer, a browser) with take()/give(), and
// the session's headroom mode reads free memory from it as it reads cudaMemGetInfo on a GPU. So
// the pressure paths run and are tested on machines without a GPU.
#pragma once

#include <atomic>
#include <cstdint>

namespace dmem {
inline namespace v1 {

/// Free and total bytes of a device, counting every process that uses it.
struct DeviceMemoryInfo {
  std::uint64_t free = 0;
  std::uint64_t total = 0;
};

class SimulatedDevice {
 public:
  explicit SimulatedDevice(std::uint64_t total) noexcept : total_(total) {}
  SimulatedDevice(const SimulatedDevice&) = delete;
  SimulatedDevice& operator=(const SimulatedDevice&) = delete;

  /// Takes `bytes` if they are free; false (nothing taken) otherwise, as a device allocation
  /// fails when other programs hold the memory.
  [[nodiscard]] bool take(std::uint64_t bytes) noexcept {
    std::uint64_t now = used_.load();
    std::uint64_t next = 0;
    do {
      if (bytes > total_ - now) return false;
      next = now + bytes;
    } while (!used_.compare_exchange_weak(now, next));
    std::uint64_t peak = peak_.load();
    while (next > peak && !peak_.compare_exchange_weak(peak, next)) {
    }
    return true;
  }
  void give(std::uint64_t bytes) noexcept { used_.fetch_sub(bytes); }

  [[nodiscard]] DeviceMemoryInfo info() const noexcept { return {total_ - used_.load(), total_}; }
  [[nodiscard]] std::uint64_t total() const noexcept { return total_; }
  [[nodiscard]] std::uint64_t used() const noexcept { return used_.load(); }
  /// The most ever in use at once, by every program together (never above total()).
  [[nodiscard]] std::uint64_t peak() const noexcept { return peak_.load(); }

 private:
  std::uint64_t total_;
  std::atomic<std::uint64_t> used_{0};
  std::atomic<std::uint64_t> peak_{0};
};

}  // namespace v1
}  // namespace dmem
