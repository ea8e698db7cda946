// CUDA build: copy bandwidth measured as the runtime copies (cudaMemcpyAsync on a stream), timed
// with events so host-side launch overhead between copies is not counted as idle link time.
#include <cuda_runtime.h>

#include <cstdlib>
#include <cstring>
#include <string>

#include "backend/cuda/cuda_calibrate.hpp"

namespace dmem::detail {

namespace {

Status cuda_failure(const char* what, cudaError_t err) {
  std::string msg = what;
  msg += ": ";
  msg += cudaGetErrorString(err);
  cudaGetLastError();
  return Status(err == cudaErrorMemoryAllocation ? Errc::out_of_memory : Errc::internal,
                std::move(msg))
      .with_rule("calibrate.device");
}

// Everything the measurement allocates, released however it ends.
struct Buffers {
  void* device_a = nullptr;
  void* device_b = nullptr;
  void* pinned = nullptr;
  void* pageable = nullptr;
  cudaStream_t stream = nullptr;
  cudaEvent_t start = nullptr;
  cudaEvent_t stop = nullptr;
  ~Buffers() {
    if (stream) cudaStreamSynchronize(stream);
    if (start) cudaEventDestroy(start);
    if (stop) cudaEventDestroy(stop);
    if (stream) cudaStreamDestroy(stream);
    if (device_a) cudaFree(device_a);
    if (device_b) cudaFree(device_b);
    if (pinned) cudaFreeHost(pinned);
    std::free(pageable);
    cudaGetLastError();
  }
};

// GB/s of `reps` copies of `bytes` (after one untimed copy).
Result<double> time_copies(Buffers& b, void* dst, const void* src, std::uint64_t bytes, int reps,
                           cudaMemcpyKind kind, double bytes_per_copy_factor = 1.0) {
  cudaError_t err = cudaMemcpyAsync(dst, src, bytes, kind, b.stream);
  if (err == cudaSuccess) err = cudaEventRecord(b.start, b.stream);
  for (int r = 0; r < reps && err == cudaSuccess; ++r)
    err = cudaMemcpyAsync(dst, src, bytes, kind, b.stream);
  if (err == cudaSuccess) err = cudaEventRecord(b.stop, b.stream);
  if (err == cudaSuccess) err = cudaEventSynchronize(b.stop);
  float ms = 0;
  if (err == cudaSuccess) err = cudaEventElapsedTime(&ms, b.start, b.stop);
  if (err != cudaSuccess) return cuda_failure("timed copy", err);
  if (!(ms > 0)) return 0.0;
  return bytes_per_copy_factor * static_cast<double>(bytes) * reps / (ms * 1e-3) / 1e9;
}

}  // namespace

Result<CudaCopyRates> cuda_measure_copies(int device, std::uint64_t bytes, int reps) noexcept {
  int count = 0;
  cudaError_t err = cudaGetDeviceCount(&count);
  if (err != cudaSuccess || count <= device) {
    std::string why = "no CUDA device";
    if (err != cudaSuccess) {
      why += ": ";
      why += cudaGetErrorString(err);
    }
    cudaGetLastError();
    return Status(Errc::unsupported, std::move(why))
        .with_rule("calibrate.device")
        .with_hint("measure the host with --device cpu");
  }
  if (bytes == 0 || reps <= 0)
    return Status(Errc::invalid_argument, "copy size and repetitions must be positive")
        .with_rule("calibrate.shape");
  if ((err = cudaSetDevice(device)) != cudaSuccess) return cuda_failure("cudaSetDevice", err);
  Buffers b;
  if ((err = cudaMalloc(&b.device_a, bytes)) != cudaSuccess) return cuda_failure("cudaMalloc", err);
  if ((err = cudaMalloc(&b.device_b, bytes)) != cudaSuccess) return cuda_failure("cudaMalloc", err);
  if ((err = cudaMallocHost(&b.pinned, bytes)) != cudaSuccess)
    return cuda_failure("cudaMallocHost", err);
  b.pageable = std::malloc(bytes);
  if (b.pageable == nullptr)
    return Status(Errc::out_of_memory, "could not allocate the pageable copy buffer")
        .with_rule("calibrate.memory");
  // Touched, so the first copy does not pay for page faults.
  std::memset(b.pinned, 1, bytes);
  std::memset(b.pageable, 2, bytes);
  if ((err = cudaStreamCreateWithFlags(&b.stream, cudaStreamNonBlocking)) != cudaSuccess)
    return cuda_failure("cudaStreamCreate", err);
  if ((err = cudaEventCreate(&b.start)) != cudaSuccess ||
      (err = cudaEventCreate(&b.stop)) != cudaSuccess)
    return cuda_failure("cudaEventCreate", err);

  CudaCopyRates r;
  auto h2d_pinned = time_copies(b, b.device_a, b.pinned, bytes, reps, cudaMemcpyHostToDevice);
  if (!h2d_pinned) return h2d_pinned.status();
  r.h2d_pinned = *h2d_pinned;
  auto h2d_pageable = time_copies(b, b.device_a, b.pageable, bytes, reps, cudaMemcpyHostToDevice);
  if (!h2d_pageable) return h2d_pageable.status();
  r.h2d_pageable = *h2d_pageable;
  auto d2h_pinned = time_copies(b, b.pinned, b.device_a, bytes, reps, cudaMemcpyDeviceToHost);
  if (!d2h_pinned) return d2h_pinned.status();
  r.d2h_pinned = *d2h_pinned;
  auto d2h_pageable = time_copies(b, b.pageable, b.device_a, bytes, reps, cudaMemcpyDeviceToHost);
  if (!d2h_pageable) return d2h_pageable.status();
  r.d2h_pageable = *d2h_pageable;
  auto d2d = time_copies(b, b.device_b, b.device_a, bytes, reps, cudaMemcpyDeviceToDevice, 2.0);
  if (!d2d) return d2d.status();
  r.d2d = *d2d;
  return r;
}

}  // namespace dmem::detail
