// NF4 / FP4 dequantization on the GPU: one thread per packed byte (two elements). Every product
// and sum is rounded on its own (__fmul_rn / __fadd_rn, no fused multiply-add), so the result
// equals the CPU path and bitsandbytes bit for bit.
#include <cuda_runtime.h>

#include "cuda_archs.hpp"
#include "nf4_cuda.hpp"

namespace dmem_nf4 {
namespace {

__constant__ std::uint32_t kCodeBits[2][16] = {
    {0xBF800000u, 0xBF3239B1u, 0xBF066B30u, 0xBECA32A0u, 0xBE91A24Du, 0xBE3D353Fu, 0xBDBA7871u,
     0x00000000u, 0x3DA2FAFFu, 0x3E24CAE3u, 0x3E7C04DDu, 0x3EAD033Au, 0x3EE1A4B8u, 0x3F1007ABu,
     0x3F3913B3u, 0x3F800000u},
    {0x00000000u, 0x3BAAAAABu, 0x3F2AAAABu, 0x3F800000u, 0x3EAAAAABu, 0x3F000000u, 0x3E2AAAABu,
     0x3E800000u, 0x00000000u, 0xBBAAAAABu, 0xBF2AAAABu, 0xBF800000u, 0xBEAAAAABu, 0xBF000000u,
     0xBE2AAAABu, 0xBE800000u}};
__constant__ std::uint32_t kMapBits[256] = {
#include "bnb4_dynamic_map.inc"
};

// Round to nearest even, NaN as the CPU path (core/float_bits.hpp): bf16 NaN -> 0xFFFF, f16
// keeps the top payload bits, quieted.
__device__ std::uint16_t to_bf16(std::uint32_t u) {
  if ((u & 0x7FFFFFFFu) > 0x7F800000u) return 0xFFFFu;
  u += 0x7FFFu + ((u >> 16) & 1u);
  return static_cast<std::uint16_t>(u >> 16);
}

__device__ std::uint16_t to_f16(std::uint32_t u) {
  const std::uint32_t sign = (u >> 16) & 0x8000u, abs = u & 0x7FFFFFFFu;
  if (abs > 0x7F800000u) return static_cast<std::uint16_t>(sign | 0x7E00u | ((abs >> 13) & 0x3FFu));
  if (abs >= 0x477FF000u) return static_cast<std::uint16_t>(sign | 0x7C00u);
  if (abs >= 0x38800000u) {
    std::uint32_t r = abs - (112u << 23);
    r += 0x0FFFu + ((r >> 13) & 1u);
    return static_cast<std::uint16_t>(sign | (r >> 13));
  }
  if (abs <= 0x33000000u) return static_cast<std::uint16_t>(sign);
  const std::uint32_t e = abs >> 23, m = (abs & 0x7FFFFFu) | 0x800000u, shift = 126u - e;
  std::uint32_t q = m >> shift;
  const std::uint32_t rem = m & ((1u << shift) - 1u), half = 1u << (shift - 1u);
  if (rem > half || (rem == half && (q & 1u) != 0)) ++q;
  return static_cast<std::uint16_t>(sign | q);
}

__device__ float block_scale(const CudaLayout& l, const unsigned char* base, std::uint64_t b) {
  if (!l.nested) return reinterpret_cast<const float*>(base + l.absmax_at)[b];
  const float offset = *reinterpret_cast<const float*>(base + l.offset_at);
  const float nested = reinterpret_cast<const float*>(base + l.nested_at)[b / 256];
  const float code = __uint_as_float(kMapBits[base[l.qabsmax_at + b]]);
  return __fadd_rn(__fmul_rn(code, nested), offset);
}

__device__ void store(const CudaLayout& l, void* dst, std::uint64_t i, float v) {
  if (l.out == 1)
    static_cast<float*>(dst)[i] = v;
  else if (l.out == 3)
    static_cast<std::uint16_t*>(dst)[i] = to_bf16(__float_as_uint(v));
  else
    static_cast<std::uint16_t*>(dst)[i] = to_f16(__float_as_uint(v));
}

__global__ void dequantize_kernel(CudaLayout l, const unsigned char* base, void* dst) {
  const std::uint64_t pairs = (l.n + 1) / 2;
  for (std::uint64_t j = blockIdx.x * std::uint64_t{blockDim.x} + threadIdx.x; j < pairs;
       j += std::uint64_t{gridDim.x} * blockDim.x) {
    const unsigned byte = base[l.codes_at + j];
    const std::uint64_t i = 2 * j;
    // blocksize is even: both elements of a byte share a block.
    const float scale = block_scale(l, base, i / l.blocksize);
    store(l, dst, i, __fmul_rn(__uint_as_float(kCodeBits[l.fp4][byte >> 4]), scale));
    if (i + 1 < l.n)
      store(l, dst, i + 1, __fmul_rn(__uint_as_float(kCodeBits[l.fp4][byte & 15u]), scale));
  }
}

}  // namespace

const char* cuda_dequantize(const CudaLayout& layout, const void* packed, void* dst, void* stream) {
  const std::uint64_t pairs = (layout.n + 1) / 2;
  if (pairs == 0) return nullptr;
  const unsigned threads = 256;
  const std::uint64_t want = (pairs + threads - 1) / threads;
  const unsigned blocks = static_cast<unsigned>(want < 65535u * 8u ? want : 65535u * 8u);
  dequantize_kernel<<<blocks, threads, 0, static_cast<cudaStream_t>(stream)>>>(
      layout, static_cast<const unsigned char*>(packed), dst);
  const cudaError_t e = cudaGetLastError();
  return e == cudaSuccess ? nullptr : cudaGetErrorString(e);
}

std::vector<std::uint32_t> cuda_archs() {
  return {DMEM_CUDA_ARCH_LIST};
}

}  // namespace dmem_nf4
