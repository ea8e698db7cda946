// The CPU device: device memory is host memory from anonymous mappings (freed memory goes back to
// the system at once), copies are memcpy, and linear layers run through cpu_linear.
#include <sys/mman.h>

#include <cstdlib>
#include <cstring>
#include <string>

#include "backend/cpu/cpu_linear.hpp"
#include "runtime/compute_device.hpp"
#include "runtime/fault_injection.hpp"

namespace dmem::detail {
namespace {

class CpuDevice final : public ComputeDevice {
 public:
  DeviceKind kind() const noexcept override { return DeviceKind::cpu; }
  bool host_addressable() const noexcept override { return true; }

  Result<void*> allocate(std::uint64_t bytes) noexcept override {
    if (fault_hit(FaultSite::device_alloc)) return oom(bytes, " (injected)");
    if (bytes == 0) bytes = 1;
    void* p = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) return oom(bytes, "");
    return p;
  }

  void free(void* ptr, std::uint64_t bytes) noexcept override {
    if (ptr != nullptr) ::munmap(ptr, bytes == 0 ? 1 : bytes);
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

 private:
  static Status oom(std::uint64_t bytes, const char* why) {
    std::string message = "the CPU device could not map ";
    message += std::to_string(bytes);
    message += " bytes";
    message += why;
    return Status(Errc::out_of_memory, std::move(message)).with_rule("runtime.alloc");
  }
};

}  // namespace

std::unique_ptr<ComputeDevice> make_cpu_device() noexcept {
  return std::unique_ptr<ComputeDevice>(new (std::nothrow) CpuDevice());
}

}  // namespace dmem::detail
