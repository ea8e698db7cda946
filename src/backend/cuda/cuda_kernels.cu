// CUDA kernels of the CUDA device (cuda_device.cpp launches them through these wrappers, so
// the device class itself is compiled by the host compiler).
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstdint>

#include "backend/cuda/cuda_kernels.hpp"

namespace dmem::detail {
namespace {

// ---- kernels -------------------------------------------------------------------------------
// fp8 to f32 by bit arithmetic (exact; e4m3 has no infinity and 0x7F is NaN).
__device__ float fp8_to_float(unsigned v, bool e4m3) {
  const unsigned sign = (v & 0x80u) << 24;
  const unsigned mbits = e4m3 ? 3u : 2u;
  const int bias = e4m3 ? 7 : 15;
  const unsigned exp = (v & 0x7Fu) >> mbits;
  const unsigned man = v & ((1u << mbits) - 1u);
  const unsigned emax = e4m3 ? 15u : 31u;
  if (e4m3 && (v & 0x7Fu) == 0x7Fu) return __int_as_float(static_cast<int>(sign | 0x7FC00000u));
  if (!e4m3 && exp == emax)
    return __int_as_float(static_cast<int>(sign | (man ? 0x7FC00000u : 0x7F800000u)));
  if (exp == 0) {
    const float m =
        static_cast<float>(man) * exp2f(static_cast<float>(1 - bias - static_cast<int>(mbits)));
    return sign ? -m : m;
  }
  const unsigned bits = sign | ((exp - bias + 127u) << 23) | (man << (23 - mbits));
  return __int_as_float(static_cast<int>(bits));
}

__device__ float load_value(const void* p, Code c, std::uint64_t i) {
  switch (c) {
    case Code::f32:
      return static_cast<const float*>(p)[i];
    case Code::f16:
      return __half2float(static_cast<const __half*>(p)[i]);
    case Code::bf16:
      return __bfloat162float(static_cast<const __nv_bfloat16*>(p)[i]);
    case Code::e4m3:
      return fp8_to_float(static_cast<const unsigned char*>(p)[i], true);
    case Code::e5m2:
      return fp8_to_float(static_cast<const unsigned char*>(p)[i], false);
  }
  return 0.0f;
}

__device__ void store_value(void* p, Code c, std::uint64_t i, float v) {
  switch (c) {
    case Code::f32:
      static_cast<float*>(p)[i] = v;
      break;
    case Code::f16:
      static_cast<__half*>(p)[i] = __float2half_rn(v);
      break;
    case Code::bf16:
      static_cast<__nv_bfloat16*>(p)[i] = __float2bfloat16_rn(v);
      break;
    default:
      break;  // narrowing to fp8 happens on the host (the loader)
  }
}

__global__ void cast_kernel(const void* src, Code from, void* dst, Code to, std::uint64_t n) {
  for (std::uint64_t i = blockIdx.x * static_cast<std::uint64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<std::uint64_t>(gridDim.x) * blockDim.x)
    store_value(dst, to, i, load_value(src, from, i));
}

// x rounded to the 16-bit type the tensor cores would see it in (f32 and fp8 weights: unchanged).
__device__ float round_activation(float v, Code wc) {
  if (wc == Code::bf16) return __bfloat162float(__float2bfloat16_rn(v));
  if (wc == Code::f16) return __half2float(__float2half_rn(v));
  return v;
}

// Reference linear: y[t, o] = sum_k x[t, k] * w[o, k] (+ b[o]), 16x16 tiles in shared memory,
// weights converted to f32 as they are read. Correct for every element type; cuBLASLt replaces
// it for speed where it is present.
constexpr int kTile = 16;
__global__ void linear_kernel(const float* x, const void* w, Code wc, const void* b, Code bc,
                              float* y, int tokens, int in, int out) {
  __shared__ float xs[kTile][kTile];
  __shared__ float ws[kTile][kTile + 1];
  const int t = blockIdx.y * kTile + threadIdx.y;
  const int o = blockIdx.x * kTile + threadIdx.x;
  float acc = 0.0f;
  for (int k0 = 0; k0 < in; k0 += kTile) {
    const int kx = k0 + threadIdx.x;
    xs[threadIdx.y][threadIdx.x] =
        (t < tokens && kx < in) ? round_activation(x[static_cast<std::uint64_t>(t) * in + kx], wc)
                                : 0.0f;
    const int wo = blockIdx.x * kTile + threadIdx.y;
    ws[threadIdx.y][threadIdx.x] =
        (wo < out && kx < in) ? load_value(w, wc, static_cast<std::uint64_t>(wo) * in + kx) : 0.0f;
    __syncthreads();
    for (int k = 0; k < kTile; ++k) acc += xs[threadIdx.y][k] * ws[threadIdx.x][k];
    __syncthreads();
  }
  if (t < tokens && o < out) {
    if (b != nullptr) acc += load_value(b, bc, o);
    y[static_cast<std::uint64_t>(t) * out + o] = acc;
  }
}

__global__ void add_bias_kernel(float* y, const void* b, Code bc, std::uint64_t n, int out) {
  for (std::uint64_t i = blockIdx.x * static_cast<std::uint64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<std::uint64_t>(gridDim.x) * blockDim.x)
    y[i] += load_value(b, bc, i % static_cast<std::uint64_t>(out));
}

unsigned grid_for(std::uint64_t count) {
  const std::uint64_t want = (count + 255) / 256;
  return static_cast<unsigned>(want < 65535 ? want : 65535);
}

}  // namespace

cudaError_t launch_add_bias(float* y, const void* b, Code bc, int tokens, int out,
                            cudaStream_t stream) {
  const std::uint64_t n = static_cast<std::uint64_t>(tokens) * static_cast<std::uint64_t>(out);
  if (n == 0) return cudaSuccess;
  add_bias_kernel<<<grid_for(n), 256, 0, stream>>>(y, b, bc, n, out);
  return cudaGetLastError();
}

cudaError_t launch_cast(const void* src, Code from, void* dst, Code to, std::uint64_t count,
                        cudaStream_t stream) {
  cast_kernel<<<grid_for(count), 256, 0, stream>>>(src, from, dst, to, count);
  return cudaGetLastError();
}

cudaError_t launch_linear(const float* x, const void* w, Code wc, const void* b, Code bc, float* y,
                          int tokens, int in, int out, cudaStream_t stream) {
  const dim3 block(kTile, kTile);
  const dim3 grid(static_cast<unsigned>((out + kTile - 1) / kTile),
                  static_cast<unsigned>((tokens + kTile - 1) / kTile));
  linear_kernel<<<grid, block, 0, stream>>>(x, w, wc, b, bc, y, tokens, in, out);
  return cudaGetLastError();
}

}  // namespace dmem::detail
