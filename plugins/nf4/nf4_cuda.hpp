// The CUDA side of the NF4 plugin: dequantization of a packed tensor that lives in device
// memory. Plain C++17 (nvcc compiles the kernel's file), so no C++20 header is included here.
#pragma once

#include <cstdint>
#include <vector>

namespace dmem_nf4 {

/// Where one packed tensor's parts sit (nf4_layout.hpp's Layout, flattened for the kernel).
struct CudaLayout {
  std::uint64_t n = 0;
  std::uint64_t blocksize = 64;
  std::uint64_t absmax_at = 0, offset_at = 0, nested_at = 0, qabsmax_at = 0, codes_at = 0;
  std::uint32_t fp4 = 0;     // 0: nf4, 1: fp4
  std::uint32_t nested = 0;  // 1: double quantization
  std::uint32_t out = 1;     // plugin dtype code: 1 f32, 2 f16, 3 bf16
};

/// Launches the dequantization of `packed` (device memory) into `dst` (device memory) on
/// `stream` (a cudaStream_t). Returns nullptr, or the CUDA error's text.
const char* cuda_dequantize(const CudaLayout& layout, const void* packed, void* dst, void* stream);

/// The architectures this build carries kernels for (75, 80, ...).
std::vector<std::uint32_t> cuda_archs();

}  // namespace dmem_nf4
