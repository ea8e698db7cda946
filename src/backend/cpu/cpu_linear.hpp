// Linear layers on the CPU: y = x · Wᵀ + b with W in any stored type (bf16, f16, fp8, f32, GGML
// blocks). W is converted to f32 a tile of rows at a time (a few hundred KiB, never the whole
// tensor) and multiplied with OpenBLAS's sgemm (a plain loop when OpenBLAS is absent).
#pragma once

#include "runtime/compute_device.hpp"

namespace dmem::detail {

[[nodiscard]] Status cpu_linear(const LinearArgs& args) noexcept;

}  // namespace dmem::detail
