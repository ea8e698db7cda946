// Internal: host<->device copy bandwidth of a CUDA device for `dmem calibrate`
// (cuda_calibrate.cpp; cuda_calibrate_stub.cpp in builds without CUDA says there is none).
#pragma once

#include <cstdint>

#include "dmem/status.hpp"

namespace dmem::detail {

/// GB/s (bytes copied / s) of each direction and host memory kind, and device-to-device.
struct CudaCopyRates {
  double h2d_pinned = 0;
  double h2d_pageable = 0;
  double d2h_pinned = 0;
  double d2h_pageable = 0;
  /// Device memory bandwidth from a device-to-device copy: 2 x bytes (read and written) / s.
  double d2d = 0;
};

/// Times `reps` cudaMemcpyAsync of `bytes` each on one stream between CUDA events, after one
/// warm-up copy, for every pair above (pinned host memory from cudaMallocHost, pageable from
/// the heap, touched first). Errc::unsupported (rule calibrate.device) without a device or in a
/// CPU-only build; Errc::out_of_memory when the buffers cannot be allocated.
[[nodiscard]] Result<CudaCopyRates> cuda_measure_copies(int device, std::uint64_t bytes,
                                                        int reps) noexcept;

}  // namespace dmem::detail
