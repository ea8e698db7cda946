// Internal: kernel launchers of the CUDA device (cuda_kernels.cu). No dmem headers here, so
// nvcc compiles only the kernels.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

namespace dmem::detail {

/// Element types the kernels read and write.
enum class Code : int { f32, f16, bf16, e4m3, e5m2 };

/// dst[i] = (to) src[i]; `to` is f32, f16 or bf16. Asynchronous on `stream`.
cudaError_t launch_cast(const void* src, Code from, void* dst, Code to, std::uint64_t count,
                        cudaStream_t stream);
/// y[t, o] = sum_k x[t, k] * w[o, k] (+ b[o]); x and y f32. With 16-bit weights x is rounded to
/// their type first, as the cuBLASLt path does, so both give the same products. Asynchronous on
/// `stream`.
cudaError_t launch_linear(const float* x, const void* w, Code wc, const void* b, Code bc, float* y,
                          int tokens, int in, int out, cudaStream_t stream);
/// y[t, o] += b[o] for a [tokens, out] f32 output. Asynchronous on `stream`.
cudaError_t launch_add_bias(float* y, const void* b, Code bc, int tokens, int out,
                            cudaStream_t stream);

}  // namespace dmem::detail
