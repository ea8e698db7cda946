// Internal: the CUDA compute device (cuda_device.cu), or a stub that says why there is none
// (cuda_device_stub.cpp in builds without CUDA).
#pragma once

#include <memory>

#include "runtime/compute_device.hpp"

namespace dmem::detail {

/// The CUDA device `index`, or why it is unavailable (no driver, no device, a driver older than
/// this build's runtime, a build without CUDA): Errc::unsupported, rule runtime.device.
[[nodiscard]] Result<std::unique_ptr<ComputeDevice>> make_cuda_device(int index) noexcept;
/// True when this build has the CUDA device compiled in.
[[nodiscard]] bool cuda_device_compiled() noexcept;

}  // namespace dmem::detail
