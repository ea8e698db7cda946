// ComputeDevice: what the runtime needs from a device — memory that can be returned at once, copies
// from host memory into it, casts of stored weights to the compute dtype, and a linear layer. The
// CPU device implements it everywhere; the CUDA device where a GPU is present.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "dmem/dtype.hpp"
#include "dmem/session.hpp"
#include "dmem/status.hpp"

namespace dmem::detail {

/// A linear layer's operands as the device sees them.
struct LinearArgs {
  const void* weight = nullptr;  ///< [out, in] in `weight_dtype` (element or block type)
  DType weight_dtype = DType::f32;
  std::uint64_t out = 0;
  std::uint64_t in = 0;
  const void* bias = nullptr;  ///< [out] or null
  DType bias_dtype = DType::f32;
  const float* x = nullptr;  ///< [tokens, in]
  std::size_t tokens = 0;
  float* y = nullptr;  ///< [tokens, out]
};

class ComputeDevice {
 public:
  virtual ~ComputeDevice() = default;
  [[nodiscard]] virtual DeviceKind kind() const noexcept = 0;
  /// True when device memory is addressable by the host (the loader then reads into it directly).
  [[nodiscard]] virtual bool host_addressable() const noexcept = 0;
  /// Device memory of `bytes` (no budget check: the caller holds a reservation).
  [[nodiscard]] virtual Result<void*> allocate(std::uint64_t bytes) noexcept = 0;
  /// Returns memory to the device's owner at once.
  virtual void free(void* ptr, std::uint64_t bytes) noexcept = 0;
  /// Page-locks host memory the device copies from (the pinned arena, staging buffers) and
  /// undoes it; a no-op where the device reads host memory directly.
  virtual void pin(void* /*ptr*/, std::uint64_t /*bytes*/) noexcept {}
  virtual void unpin(void* /*ptr*/) noexcept {}
  /// Host -> device copy (the host memory is pinned or a staging buffer).
  [[nodiscard]] virtual Status copy_to_device(void* dst, const void* src,
                                              std::uint64_t bytes) noexcept = 0;
  /// Queues a host -> device copy; `wait_copies` returns once every queued copy has landed (the
  /// source must stay valid until then). A group's tensors are queued together and waited for
  /// once. The default copies at once.
  [[nodiscard]] virtual Status copy_to_device_async(void* dst, const void* src,
                                                    std::uint64_t bytes) noexcept {
    return copy_to_device(dst, src, bytes);
  }
  [[nodiscard]] virtual Status wait_copies() noexcept { return Status::ok(); }
  /// Device -> host copy (activations only: weights are never copied back).
  [[nodiscard]] virtual Status copy_to_host(void* dst, const void* src,
                                            std::uint64_t bytes) noexcept = 0;
  /// Converts `count` values stored as `from` at `src` (device memory) to `to` at `dst`.
  [[nodiscard]] virtual Status cast(DType from, const void* src, DType to, void* dst,
                                    std::uint64_t count) noexcept = 0;
  [[nodiscard]] virtual Status linear(const LinearArgs& args) noexcept = 0;
  /// The stream casts and linear layers run on (a cudaStream_t), for plugin kernels that must
  /// run before them in order; null on the CPU.
  [[nodiscard]] virtual void* compute_stream() noexcept { return nullptr; }
  /// What runs the linear layers ("OpenBLAS sgemm", "cuBLASLt 13.0.2", …), for logs and reports.
  [[nodiscard]] virtual std::string linear_backend() const = 0;
  /// Free and total memory of the device counting every process (headroom mode's probe).
  [[nodiscard]] virtual Result<DeviceMemoryInfo> memory_info() noexcept = 0;
};

/// The CPU device (always available). With `simulated`, its memory is drawn from that simulated
/// device shared with other programs.
[[nodiscard]] std::unique_ptr<ComputeDevice> make_cpu_device(
    std::shared_ptr<SimulatedDevice> simulated = nullptr) noexcept;

}  // namespace dmem::detail
