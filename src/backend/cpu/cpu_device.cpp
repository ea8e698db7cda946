// The CPU device: device memory is host memory from anonymous mappings (freed memory goes back to
// the system at once), copies are memcpy, and linear layers run through cpu_linear. With a
// SimulatedDevice its memory is also drawn from that device's total, shared with other programs.
#include <sys/mman.h>

#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>
#include <utility>

#include "backend/cpu/cpu_linear.hpp"
#include "runtime/compute_device.hpp"
#include "runtime/fault_injection.hpp"

namespace dmem::detail {
namespace {

class CpuDevice final : public ComputeDevice {
 public:
  explicit CpuDevice(std::shared_ptr<SimulatedDevice> simulated) noexcept
      : simulated_(std::move(simulated)) {}

  DeviceKind kind() const noexcept override { return DeviceKind::cpu; }
  bool host_addressable() const noexcept override { return true; }

  Result<void*> allocate(std::uint64_t bytes) noexcept override {
    if (fault_hit(FaultSite::device_alloc)) return oom(bytes, " (injected)");
    if (bytes == 0) bytes = 1;
    if (simulated_ && !simulated_->take(bytes)) {
      std::string why = " (the simulated device has ";
      why += std::to_string(simulated_->info().free);
      why += " of ";
      why += std::to_string(simulated_->total());
      why += " bytes free)";
      return oom(bytes, why.c_str());
    }
    void* p = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) {
      if (simulated_) simulated_->give(bytes);
      return oom(bytes, "");
    }
    return p;
  }

  void free(void* ptr, std::uint64_t bytes) noexcept override {
    if (ptr == nullptr) return;
    if (bytes == 0) bytes = 1;
    ::munmap(ptr, bytes);
    if (simulated_) simulated_->give(bytes);
  }

  Status copy_to_device(void* dst, const void* src, std::uint64_t bytes) noexcept override {
    if (bytes != 0) std::memcpy(dst, src, bytes);
    return Status::ok();
  }

  Status copy_to_host(void* dst, const void* src, std::uint64_t bytes) noexcept override {
    if (bytes != 0) std::memcpy(dst, src, bytes);
    return Status::ok();
  }

  Status cast(DType from, const void* src, DType to, void* dst,
              std::uint64_t count) noexcept override {
    return convert(from, src, to, dst, count);
  }

  Status linear(const LinearArgs& args) noexcept override { return cpu_linear(args); }
  std::string linear_backend() const override { return "OpenBLAS sgemm (f32)"; }

  Result<DeviceMemoryInfo> memory_info() noexcept override {
    if (simulated_) return simulated_->info();
    // The CPU device's memory is the system's RAM: what the kernel would give without swapping.
    std::ifstream meminfo("/proc/meminfo");
    std::string key;
    std::uint64_t kib = 0;
    DeviceMemoryInfo info;
    bool have_free = false, have_total = false;
    while (meminfo >> key >> kib) {
      if (key == "MemAvailable:") {
        info.free = kib * 1024;
        have_free = true;
      } else if (key == "MemTotal:") {
        info.total = kib * 1024;
        have_total = true;
      }
      meminfo.ignore(64, '\n');
    }
    if (!have_free || !have_total)
      return Status(Errc::unsupported, "no MemAvailable in /proc/meminfo")
          .with_rule("runtime.probe")
          .with_hint("give SessionOptions::memory_probe");
    return info;
  }

 private:
  static Status oom(std::uint64_t bytes, const char* why) {
    std::string message = "the CPU device could not map ";
    message += std::to_string(bytes);
    message += " bytes";
    message += why;
    return Status(Errc::out_of_memory, std::move(message)).with_rule("runtime.alloc");
  }

  std::shared_ptr<SimulatedDevice> simulated_;
};

}  // namespace

std::unique_ptr<ComputeDevice> make_cpu_device(
    std::shared_ptr<SimulatedDevice> simulated) noexcept {
  return std::unique_ptr<ComputeDevice>(new (std::nothrow) CpuDevice(std::move(simulated)));
}

}  // namespace dmem::detail
