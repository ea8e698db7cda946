// The gguf plugin's CUDA kernels (gguf_cuda.cu; gguf_cuda_stub.cpp in a build without CUDA).
// Plain types only: the .cu is compiled as C++17 by nvcc. Each function returns an empty string
// on success and otherwise what went wrong.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace dmem_gguf::cuda {

/// Output element types of dequantize (the ABI's DMEM_PLUGIN_DTYPE_F32 / F16 / BF16 codes).
enum class Out : std::uint8_t { f32, f16, bf16 };

/// True when this build has the kernels (CUDA toolkit found at configure time).
[[nodiscard]] bool compiled() noexcept;
/// Whether a kernel exists for this ggml type id (8 q8_0, 2 q4_0, 12 q4_k, 13 q5_k, 14 q6_k).
[[nodiscard]] bool has_kernel(int ggml_type) noexcept;
/// The architectures the kernels were compiled for (75, 80, ...); empty without CUDA.
[[nodiscard]] std::vector<std::uint32_t> archs();

/// `block_count` blocks at `blocks` (device memory) to `out` (device memory), on `stream`.
[[nodiscard]] std::string dequantize(int ggml_type, const void* blocks, void* out, Out out_type,
                                     std::uint64_t block_count, void* stream);

/// y[tokens, out] = x[tokens, in] · W^T + bias, all f32 in device memory, W packed rows of
/// blocks: W is dequantized into a stream-ordered scratch buffer, then a tiled f32 GEMM.
[[nodiscard]] std::string linear(int ggml_type, const float* x, const void* w_blocks,
                                 const float* bias, float* y, std::uint64_t tokens,
                                 std::uint64_t in, std::uint64_t out, void* stream);

}  // namespace dmem_gguf::cuda
