// GEMM throughput through a ComputeDevice's own linear: what the runtime will actually run, so the
// figure follows whatever kernel the device uses (a reference kernel today, cuBLASLt tomorrow).
#include <algorithm>
#include <chrono>
#include <memory>
#include <new>
#include <vector>

#include "hw/calibrate.hpp"

namespace dmem::detail {

namespace {

// Device memory returned however the measurement ends.
class DeviceBuffer {
 public:
  DeviceBuffer(ComputeDevice& device, std::uint64_t bytes) : device_(device), bytes_(bytes) {}
  ~DeviceBuffer() { device_.free(ptr_, bytes_); }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  Status allocate() {
    auto p = device_.allocate(bytes_);
    if (!p) return p.status();
    ptr_ = *p;
    return Status::ok();
  }
  [[nodiscard]] void* get() const { return ptr_; }

 private:
  ComputeDevice& device_;
  std::uint64_t bytes_;
  void* ptr_ = nullptr;
};

Status upload(ComputeDevice& device, void* dst, const void* src, std::uint64_t bytes) {
  if (device.host_addressable()) {
    std::copy_n(static_cast<const unsigned char*>(src), bytes, static_cast<unsigned char*>(dst));
    return Status::ok();
  }
  return device.copy_to_device(dst, src, bytes);
}

}  // namespace

Result<double> measure_device_linear_tflops(ComputeDevice& device, DType dtype,
                                            std::uint64_t tokens, std::uint64_t in,
                                            std::uint64_t out, int reps) noexcept {
  const auto wbytes = dtype_bytes(dtype, in * out);
  if (!wbytes || tokens == 0 || in == 0 || out == 0)
    return Status(Errc::invalid_argument, "linear shape out of range").with_rule("calibrate.shape");
  // Weights: small ordinary values in `dtype` (a plain byte pattern where no conversion exists).
  std::unique_ptr<unsigned char[]> w(new (std::nothrow) unsigned char[*wbytes]);
  std::unique_ptr<float[]> x(new (std::nothrow) float[tokens * in]);
  if (!w || !x)
    return Status(Errc::out_of_memory, "could not allocate the GEMM operands on the host")
        .with_rule("calibrate.memory");
  for (std::uint64_t i = 0; i < tokens * in; ++i)
    x[i] = static_cast<float>(i % 17u) * 0.0625f - 0.5f;
  {
    std::unique_ptr<float[]> src(new (std::nothrow) float[in * out]);
    if (!src)
      return Status(Errc::out_of_memory, "could not allocate the GEMM operands on the host")
          .with_rule("calibrate.memory");
    for (std::uint64_t i = 0; i < in * out; ++i)
      src[i] = static_cast<float>(i % 11u) * 0.03125f - 0.15625f;
    if (!convert(DType::f32, src.get(), dtype, w.get(), in * out))
      std::fill_n(w.get(), *wbytes, static_cast<unsigned char>(1));
  }

  DeviceBuffer dw(device, *wbytes), dx(device, tokens * in * 4), dy(device, tokens * out * 4);
  DMEM_TRY(dw.allocate());
  DMEM_TRY(dx.allocate());
  DMEM_TRY(dy.allocate());
  DMEM_TRY(upload(device, dw.get(), w.get(), *wbytes));
  DMEM_TRY(upload(device, dx.get(), x.get(), tokens * in * 4));

  LinearArgs a;
  a.weight = dw.get();
  a.weight_dtype = dtype;
  a.out = out;
  a.in = in;
  a.x = static_cast<const float*>(dx.get());
  a.tokens = tokens;
  a.y = static_cast<float*>(dy.get());
  // The first call is the warm-up and also tells whether the linear takes this dtype.
  DMEM_TRY(device.linear(a));
  const double flops =
      2.0 * static_cast<double>(tokens) * static_cast<double>(in) * static_cast<double>(out);
  double best = 0;
  for (int r = 0; r < std::max(1, reps); ++r) {
    const auto t0 = std::chrono::steady_clock::now();
    DMEM_TRY(device.linear(a));  // synchronous: it returns when the result is written
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (s > 0) best = std::max(best, flops / s / 1e12);
  }
  return best;
}

}  // namespace dmem::detail
