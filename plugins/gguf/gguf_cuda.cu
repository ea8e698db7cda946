// CUDA dequantization of q8_0, q4_0, q4_k, q5_k and q6_k, one thread per value, and a linear
// layer built on it. Each value is computed with the CPU reference's operations in its order
// (block_quant.cpp), with explicitly rounded intrinsics so nvcc cannot fuse a multiply and a
// subtract: finite results are bit-identical to the CPU's. (A NaN scale gives the GPU's
// canonical NaN, where the CPU keeps the payload.)
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstring>

#include "gguf_cuda.hpp"
#include "plugin_cuda_archs.hpp"

namespace dmem_gguf::cuda {

namespace {

using u8 = unsigned char;

// f16 bits -> f32 exactly as the CPU path (NaN payload kept, quieted).
__device__ float half_bits_to_float(unsigned h) {
  const unsigned sign = (h & 0x8000u) << 16;
  const unsigned exp = (h >> 10) & 0x1Fu;
  unsigned man = h & 0x3FFu;
  unsigned bits;
  if (exp == 0x1F) {
    bits = sign | 0x7F800000u | (man << 13) | (man != 0 ? 0x00400000u : 0u);
  } else if (exp != 0) {
    bits = sign | ((exp + 112u) << 23) | (man << 13);
  } else if (man == 0) {
    bits = sign;
  } else {
    const int shift = __clz(man) - 21;  // leading one to bit 10
    man <<= shift;
    bits = sign | (static_cast<unsigned>(113 - shift) << 23) | ((man & 0x3FFu) << 13);
  }
  return __uint_as_float(bits);
}
__device__ float half_at(const u8* p) {
  return half_bits_to_float(static_cast<unsigned>(p[0]) | (static_cast<unsigned>(p[1]) << 8));
}

__device__ void scale_min_k4(int j, const u8* q, int& sc, int& m) {
  if (j < 4) {
    sc = q[j] & 63;
    m = q[j + 4] & 63;
  } else {
    sc = (q[j + 4] & 0x0F) | ((q[j - 4] >> 6) << 4);
    m = (q[j + 4] >> 4) | ((q[j] >> 6) << 4);
  }
}

// Value v (0..255) of a Q4_K / Q5_K block: (d*sc) * q - (dmin*m).
template <bool kFive>
__device__ float k_value(const u8* b, int v) {
  const float d = half_at(b), dmin = half_at(b + 2);
  const int c = v / 64, l = v % 64, sub = 2 * c + (l >= 32 ? 1 : 0), j = l % 32;
  int sc, m;
  scale_min_k4(sub, b + 4, sc, m);
  const u8* qs = b + (kFive ? 48 : 16) + 32 * c;
  int q = l < 32 ? (qs[j] & 0x0F) : (qs[j] >> 4);
  if (kFive) {
    const u8* qh = b + 16;
    if (qh[j] & (1u << sub)) q += 16;
  }
  const float d1 = __fmul_rn(d, static_cast<float>(sc));
  const float m1 = __fmul_rn(dmin, static_cast<float>(m));
  return __fsub_rn(__fmul_rn(d1, static_cast<float>(q)), m1);
}

__device__ float q6_k_value(const u8* b, int v) {
  const int half = v / 128, w = v % 128, quarter = w / 32, l = w % 32;
  const u8* ql = b + 64 * half;
  const u8* qh = b + 128 + 32 * half;
  const signed char* sc = reinterpret_cast<const signed char*>(b + 192 + 8 * half);
  const float d = half_at(b + 208);
  const int lo = quarter & 1 ? ql[l + 32] : ql[l];
  const int nib = quarter >= 2 ? lo >> 4 : lo & 0x0F;
  const int q = (nib | (((qh[l] >> (2 * quarter)) & 3) << 4)) - 32;
  return __fmul_rn(__fmul_rn(d, static_cast<float>(sc[l / 16 + 2 * quarter])),
                   static_cast<float>(q));
}

template <int kType>
__device__ float value(const u8* blocks, unsigned long long idx) {
  if constexpr (kType == 8) {  // q8_0
    const u8* b = blocks + idx / 32 * 34;
    return __fmul_rn(static_cast<float>(static_cast<signed char>(b[2 + idx % 32])), half_at(b));
  } else if constexpr (kType == 2) {  // q4_0
    const u8* b = blocks + idx / 32 * 18;
    const int v = static_cast<int>(idx % 32), j = v % 16;
    const int nib = v < 16 ? (b[2 + j] & 0x0F) : (b[2 + j] >> 4);
    return __fmul_rn(static_cast<float>(nib - 8), half_at(b));
  } else if constexpr (kType == 12) {
    return k_value<false>(blocks + idx / 256 * 144, static_cast<int>(idx % 256));
  } else if constexpr (kType == 13) {
    return k_value<true>(blocks + idx / 256 * 176, static_cast<int>(idx % 256));
  } else {
    return q6_k_value(blocks + idx / 256 * 210, static_cast<int>(idx % 256));
  }
}

__device__ void store(float* out, unsigned long long i, float v) {
  out[i] = v;
}
__device__ void store(__half* out, unsigned long long i, float v) {
  out[i] = __float2half_rn(v);
}
__device__ void store(__nv_bfloat16* out, unsigned long long i, float v) {
  out[i] = __float2bfloat16_rn(v);
}

template <int kType, class T>
__global__ void dequant_kernel(const u8* blocks, T* out, unsigned long long count) {
  const unsigned long long stride = static_cast<unsigned long long>(gridDim.x) * blockDim.x;
  for (unsigned long long i =
           blockIdx.x * static_cast<unsigned long long>(blockDim.x) + threadIdx.x;
       i < count; i += stride)
    store(out, i, value<kType>(blocks, i));
}

constexpr int kBlockElems(int type) {
  return type == 8 || type == 2 ? 32 : 256;
}

template <int kType, class T>
cudaError_t launch(const void* blocks, void* out, unsigned long long count, cudaStream_t s) {
  const unsigned long long want = (count + 255) / 256;
  const unsigned grid = static_cast<unsigned>(want < 65535ull * 16 ? want : 65535ull * 16);
  dequant_kernel<kType, T>
      <<<grid, 256, 0, s>>>(static_cast<const u8*>(blocks), static_cast<T*>(out), count);
  return cudaGetLastError();
}

template <class T>
cudaError_t launch_type(int type, const void* blocks, void* out, unsigned long long count,
                        cudaStream_t s) {
  switch (type) {
    case 8:
      return launch<8, T>(blocks, out, count, s);
    case 2:
      return launch<2, T>(blocks, out, count, s);
    case 12:
      return launch<12, T>(blocks, out, count, s);
    case 13:
      return launch<13, T>(blocks, out, count, s);
    case 14:
      return launch<14, T>(blocks, out, count, s);
    default:
      return cudaErrorInvalidValue;
  }
}

// y[n, o] = sum_k x[n, k] * w[o, k] + b[o]: 16 x 16 output tiles through shared memory.
constexpr int kTile = 16;
__global__ void sgemm_nt(const float* x, const float* w, const float* bias, float* y,
                         unsigned long long tokens, unsigned long long in, unsigned long long out) {
  __shared__ float xs[kTile][kTile + 1];
  __shared__ float ws[kTile][kTile + 1];
  const unsigned long long n = blockIdx.y * static_cast<unsigned long long>(kTile) + threadIdx.y;
  const unsigned long long o = blockIdx.x * static_cast<unsigned long long>(kTile) + threadIdx.x;
  const unsigned long long wo = blockIdx.x * static_cast<unsigned long long>(kTile) + threadIdx.y;
  float acc = 0.0f;
  for (unsigned long long k0 = 0; k0 < in; k0 += kTile) {
    const unsigned long long k = k0 + threadIdx.x;
    xs[threadIdx.y][threadIdx.x] = n < tokens && k < in ? x[n * in + k] : 0.0f;
    ws[threadIdx.y][threadIdx.x] = wo < out && k < in ? w[wo * in + k] : 0.0f;
    __syncthreads();
    for (int kk = 0; kk < kTile; ++kk)
      acc = __fadd_rn(acc, __fmul_rn(xs[threadIdx.y][kk], ws[threadIdx.x][kk]));
    __syncthreads();
  }
  if (n < tokens && o < out) y[n * out + o] = bias ? __fadd_rn(acc, bias[o]) : acc;
}

std::string describe(cudaError_t e) {
  return std::string(cudaGetErrorName(e)) + ": " + cudaGetErrorString(e);
}

}  // namespace

bool compiled() noexcept {
  return true;
}

bool has_kernel(int ggml_type) noexcept {
  return ggml_type == 8 || ggml_type == 2 || ggml_type == 12 || ggml_type == 13 || ggml_type == 14;
}

std::vector<std::uint32_t> archs() {
  static const std::uint32_t list[] = {DMEM_PLUGIN_CUDA_ARCHS};
  return {std::begin(list), std::end(list)};
}

std::string dequantize(int ggml_type, const void* blocks, void* out, Out out_type,
                       std::uint64_t block_count, void* stream) {
  if (!has_kernel(ggml_type)) return "no kernel for ggml type " + std::to_string(ggml_type);
  const unsigned long long count = block_count * kBlockElems(ggml_type);
  auto s = static_cast<cudaStream_t>(stream);
  cudaError_t e = cudaSuccess;
  if (out_type == Out::f32) e = launch_type<float>(ggml_type, blocks, out, count, s);
  if (out_type == Out::f16) e = launch_type<__half>(ggml_type, blocks, out, count, s);
  if (out_type == Out::bf16) e = launch_type<__nv_bfloat16>(ggml_type, blocks, out, count, s);
  return e == cudaSuccess ? std::string() : describe(e);
}

std::string linear(int ggml_type, const float* x, const void* w_blocks, const float* bias, float* y,
                   std::uint64_t tokens, std::uint64_t in, std::uint64_t out, void* stream) {
  auto s = static_cast<cudaStream_t>(stream);
  void* scratch = nullptr;
  cudaError_t e = cudaMallocAsync(&scratch, in * out * sizeof(float), s);
  if (e != cudaSuccess) return "scratch for the dequantized weight: " + describe(e);
  std::string err =
      dequantize(ggml_type, w_blocks, scratch, Out::f32, in * out / kBlockElems(ggml_type), stream);
  if (err.empty()) {
    const dim3 block(kTile, kTile);
    const dim3 grid(static_cast<unsigned>((out + kTile - 1) / kTile),
                    static_cast<unsigned>((tokens + kTile - 1) / kTile));
    sgemm_nt<<<grid, block, 0, s>>>(x, static_cast<const float*>(scratch), bias, y, tokens, in,
                                    out);
    e = cudaGetLastError();
    if (e != cudaSuccess) err = describe(e);
  }
  const cudaError_t f = cudaFreeAsync(scratch, s);
  if (err.empty() && f != cudaSuccess) err = describe(f);
  return err;
}

}  // namespace dmem_gguf::cuda
