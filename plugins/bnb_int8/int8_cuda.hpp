// The bnb_int8 plugin's CUDA side (int8_cuda.cu; int8_cuda_stub.cpp without CUDA): LLM.int8
// linear (activations quantized per row, outlier columns on a 16-bit path, int8 GEMM with int32
// accumulation through cuBLASLt, loaded at run time) and dequantization. Plain C++17 types.
// Functions return an empty string on success, otherwise what went wrong.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace dmem_bnb::cuda {

/// Float element types of activations and outputs (the ABI's F32 / F16 / BF16).
enum class Float : std::uint8_t { f32, f16, bf16 };

[[nodiscard]] bool compiled() noexcept;
/// The architectures the kernels were compiled for; empty without CUDA.
[[nodiscard]] std::vector<std::uint32_t> archs();

/// Packed weight (device memory): SCB f32[out], then CB int8[out, in].
struct Weight {
  const float* scb;
  const std::int8_t* cb;
  std::uint64_t out;
  std::uint64_t in;
};

/// W[out, in] = CB * SCB / 127 into `dst` of type `type`.
[[nodiscard]] std::string dequantize(const Weight& w, void* dst, Float type, void* stream);

/// y[tokens, out] = x[tokens, in] · W^T + bias; x, y and bias (may be null) of type `type`.
/// `used_cublaslt` tells whether the int8 GEMM ran in cuBLASLt or in the fallback kernel.
[[nodiscard]] std::string linear(const Weight& w, const void* x, const void* bias, void* y,
                                 Float type, std::uint64_t tokens, float threshold, void* stream,
                                 bool* used_cublaslt = nullptr);

}  // namespace dmem_bnb::cuda
