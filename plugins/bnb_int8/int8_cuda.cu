// LLM.int8 on CUDA (FORMATS.md §4.2). cuBLASLt is loaded at run time (dlopen), so the plugin
// loads on machines without it; without it, or for shapes its int8 kernels refuse, a plain
// int8 GEMM kernel with int32 accumulation takes over.
#include <cublasLt.h>
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>
#include <dlfcn.h>

#include <mutex>

#include "int8_cuda.hpp"
#include "plugin_cuda_archs.hpp"

namespace dmem_bnb::cuda {

namespace {

__device__ float load(const float* p, unsigned long long i) {
  return p[i];
}
__device__ float load(const __half* p, unsigned long long i) {
  return __half2float(p[i]);
}
__device__ float load(const __nv_bfloat16* p, unsigned long long i) {
  return __bfloat162float(p[i]);
}
__device__ void store(float* p, unsigned long long i, float v) {
  p[i] = v;
}
__device__ void store(__half* p, unsigned long long i, float v) {
  p[i] = __float2half_rn(v);
}
__device__ void store(__nv_bfloat16* p, unsigned long long i, float v) {
  p[i] = __float2bfloat16_rn(v);
}

// Activations take bitsandbytes' f16 path: the value as an f16.
template <class T>
__device__ float activation(const T* x, unsigned long long i) {
  return __half2float(__float2half_rn(load(x, i)));
}

// Columns holding any |x| >= threshold.
template <class T>
__global__ void flag_outliers(const T* x, unsigned long long tokens, unsigned long long in,
                              float threshold, int* flags) {
  const unsigned long long i =
      blockIdx.x * static_cast<unsigned long long>(blockDim.x) + threadIdx.x;
  if (i >= tokens * in) return;
  if (fabsf(activation(x, i)) >= threshold) flags[i % in] = 1;
}

// The outlier columns in increasing order (one thread: deterministic, and in is small).
__global__ void list_outliers(const int* flags, unsigned long long in, int* cols, int* count) {
  int n = 0;
  for (unsigned long long c = 0; c < in; ++c)
    if (flags[c]) cols[n++] = static_cast<int>(c);
  *count = n;
}

// One block per token row: the absmax of the values under the threshold, then the int8 codes;
// outlier values, and whole outlier columns when there are several rows, become 0.
template <class T>
__global__ void quantize_rows(const T* x, unsigned long long tokens, unsigned long long in,
                              float threshold, const int* flags, signed char* ca, float* sca) {
  __shared__ float part[256];
  const unsigned long long row = blockIdx.x;
  float m = 0.0f;
  for (unsigned long long c = threadIdx.x; c < in; c += blockDim.x) {
    const float a = fabsf(activation(x, row * in + c));
    if (threshold <= 0.0f || a < threshold) m = fmaxf(m, a);
  }
  part[threadIdx.x] = m;
  __syncthreads();
  for (unsigned s = blockDim.x / 2; s > 0; s >>= 1) {
    if (threadIdx.x < s) part[threadIdx.x] = fmaxf(part[threadIdx.x], part[threadIdx.x + s]);
    __syncthreads();
  }
  const float absmax = part[0];
  if (threadIdx.x == 0) sca[row] = absmax;
  const float inv = __fdiv_rn(127.0f, absmax);
  for (unsigned long long c = threadIdx.x; c < in; c += blockDim.x) {
    const float v = activation(x, row * in + c);
    const bool outlier = threshold > 0.0f && (fabsf(v) >= threshold || (tokens > 1 && flags[c]));
    const float q = absmax > 0.0f && !outlier ? rintf(__fmul_rn(v, inv)) : 0.0f;
    ca[row * in + c] = static_cast<signed char>(fminf(127.0f, fmaxf(-127.0f, q)));
  }
}

// C[t, o] = sum_k CA[t, k] * CB[o, k] in int32: the fallback GEMM.
constexpr int kTile = 16;
__global__ void igemm_nt(const signed char* ca, const signed char* cb, int* c,
                         unsigned long long tokens, unsigned long long in, unsigned long long out) {
  __shared__ int as[kTile][kTile + 1];
  __shared__ int bs[kTile][kTile + 1];
  const unsigned long long t = blockIdx.y * static_cast<unsigned long long>(kTile) + threadIdx.y;
  const unsigned long long o = blockIdx.x * static_cast<unsigned long long>(kTile) + threadIdx.x;
  const unsigned long long bo = blockIdx.x * static_cast<unsigned long long>(kTile) + threadIdx.y;
  int acc = 0;
  for (unsigned long long k0 = 0; k0 < in; k0 += kTile) {
    const unsigned long long k = k0 + threadIdx.x;
    as[threadIdx.y][threadIdx.x] = t < tokens && k < in ? ca[t * in + k] : 0;
    bs[threadIdx.y][threadIdx.x] = bo < out && k < in ? cb[bo * in + k] : 0;
    __syncthreads();
    for (int kk = 0; kk < kTile; ++kk) acc += as[threadIdx.y][kk] * bs[threadIdx.x][kk];
    __syncthreads();
  }
  if (t < tokens && o < out) c[t * out + o] = acc;
}

// y = C * SCA[t] * SCB[o] / 127^2 + bias + the outlier columns' x · W^T in f32.
template <class T>
__global__ void epilogue(const int* c, const float* sca, const float* scb, const signed char* cb,
                         const T* x, const T* bias, const int* cols, const int* ncols, T* y,
                         unsigned long long tokens, unsigned long long in, unsigned long long out) {
  const unsigned long long i =
      blockIdx.x * static_cast<unsigned long long>(blockDim.x) + threadIdx.x;
  if (i >= tokens * out) return;
  const unsigned long long t = i / out, o = i % out;
  float v = static_cast<float>(c[i]) * sca[t] * scb[o] * (1.0f / 16129.0f);
  const float wscale = scb[o] * 7.874015718698502e-3f;
  for (int j = 0; j < *ncols; ++j) {
    const unsigned long long k = static_cast<unsigned long long>(cols[j]);
    v += activation(x, t * in + k) * (static_cast<float>(cb[o * in + k]) * wscale);
  }
  if (bias) v += load(bias, o);
  store(y, i, v);
}

template <class T>
__global__ void dequant(const signed char* cb, const float* scb, T* w, unsigned long long out,
                        unsigned long long in) {
  const unsigned long long i =
      blockIdx.x * static_cast<unsigned long long>(blockDim.x) + threadIdx.x;
  if (i >= out * in) return;
  store(w, i, __fmul_rn(__fmul_rn(static_cast<float>(cb[i]), scb[i / in]), 7.874015718698502e-3f));
}

// ---- cuBLASLt, loaded on first use ----------------------------------------------------------
struct Lt {
  bool ok = false;
  cublasLtHandle_t handle = nullptr;
  decltype(&cublasLtCreate) create;
  decltype(&cublasLtMatmulDescCreate) desc_create;
  decltype(&cublasLtMatmulDescDestroy) desc_destroy;
  decltype(&cublasLtMatmulDescSetAttribute) desc_set;
  decltype(&cublasLtMatrixLayoutCreate) layout_create;
  decltype(&cublasLtMatrixLayoutDestroy) layout_destroy;
  decltype(&cublasLtMatmulPreferenceCreate) pref_create;
  decltype(&cublasLtMatmulPreferenceDestroy) pref_destroy;
  decltype(&cublasLtMatmulAlgoGetHeuristic) heuristic;
  decltype(&cublasLtMatmul) matmul;
};

template <class F>
bool sym(void* lib, const char* name, F& f) {
  f = reinterpret_cast<F>(dlsym(lib, name));
  return f != nullptr;
}

Lt& lt() {
  static Lt l;
  static std::once_flag once;
  std::call_once(once, [] {
    void* lib = nullptr;
    for (const char* n :
         {"libcublasLt.so.13", "libcublasLt.so.12", "libcublasLt.so.11", "libcublasLt.so"})
      if ((lib = dlopen(n, RTLD_NOW | RTLD_LOCAL)) != nullptr) break;
    if (!lib) return;  // never closed: libraries stay loaded, as plugins do
    l.ok = sym(lib, "cublasLtCreate", l.create) &&
           sym(lib, "cublasLtMatmulDescCreate", l.desc_create) &&
           sym(lib, "cublasLtMatmulDescDestroy", l.desc_destroy) &&
           sym(lib, "cublasLtMatmulDescSetAttribute", l.desc_set) &&
           sym(lib, "cublasLtMatrixLayoutCreate", l.layout_create) &&
           sym(lib, "cublasLtMatrixLayoutDestroy", l.layout_destroy) &&
           sym(lib, "cublasLtMatmulPreferenceCreate", l.pref_create) &&
           sym(lib, "cublasLtMatmulPreferenceDestroy", l.pref_destroy) &&
           sym(lib, "cublasLtMatmulAlgoGetHeuristic", l.heuristic) &&
           sym(lib, "cublasLtMatmul", l.matmul) && l.create(&l.handle) == CUBLAS_STATUS_SUCCESS;
  });
  return l;
}

// C[t, o] (int32, row-major [tokens, out]) = CA · CB^T through cuBLASLt: column-major, that is
// C^T[out, tokens] = op(CB)[out, in] · CA^T[in, tokens] with A = CB transposed (TN, as the
// IMMA kernels want). False when cuBLASLt is missing or has no algorithm for the shape.
bool igemm_lt(const signed char* ca, const signed char* cb, int* c, std::uint64_t tokens,
              std::uint64_t in, std::uint64_t out, cudaStream_t s) {
  Lt& l = lt();
  if (!l.ok || in % 4 != 0 || out % 4 != 0) return false;
  cublasLtMatmulDesc_t desc = nullptr;
  cublasLtMatrixLayout_t la = nullptr, lb = nullptr, lc = nullptr;
  cublasLtMatmulPreference_t pref = nullptr;
  bool done = false;
  const cublasOperation_t ta = CUBLAS_OP_T, tb = CUBLAS_OP_N;
  if (l.desc_create(&desc, CUBLAS_COMPUTE_32I, CUDA_R_32I) == CUBLAS_STATUS_SUCCESS &&
      l.desc_set(desc, CUBLASLT_MATMUL_DESC_TRANSA, &ta, sizeof(ta)) == CUBLAS_STATUS_SUCCESS &&
      l.desc_set(desc, CUBLASLT_MATMUL_DESC_TRANSB, &tb, sizeof(tb)) == CUBLAS_STATUS_SUCCESS &&
      l.layout_create(&la, CUDA_R_8I, in, out, static_cast<int64_t>(in)) == CUBLAS_STATUS_SUCCESS &&
      l.layout_create(&lb, CUDA_R_8I, in, tokens, static_cast<int64_t>(in)) ==
          CUBLAS_STATUS_SUCCESS &&
      l.layout_create(&lc, CUDA_R_32I, out, tokens, static_cast<int64_t>(out)) ==
          CUBLAS_STATUS_SUCCESS &&
      l.pref_create(&pref) == CUBLAS_STATUS_SUCCESS) {
    cublasLtMatmulHeuristicResult_t h{};
    int found = 0;
    if (l.heuristic(l.handle, desc, la, lb, lc, lc, pref, 1, &h, &found) == CUBLAS_STATUS_SUCCESS &&
        found > 0) {
      const int alpha = 1, beta = 0;
      done = l.matmul(l.handle, desc, &alpha, cb, la, ca, lb, &beta, c, lc, c, lc, &h.algo, nullptr,
                      0, s) == CUBLAS_STATUS_SUCCESS;
    }
  }
  if (pref) l.pref_destroy(pref);
  if (lc) l.layout_destroy(lc);
  if (lb) l.layout_destroy(lb);
  if (la) l.layout_destroy(la);
  if (desc) l.desc_destroy(desc);
  return done;
}

std::string describe(cudaError_t e) {
  return std::string(cudaGetErrorName(e)) + ": " + cudaGetErrorString(e);
}

unsigned blocks_for(unsigned long long n) {
  return static_cast<unsigned>((n + 255) / 256);
}

template <class T>
std::string run_linear(const Weight& w, const T* x, const T* bias, T* y, std::uint64_t tokens,
                       float threshold, cudaStream_t s, bool* used_lt) {
  const std::uint64_t in = w.in, out = w.out;
  // One scratch allocation: flags + outlier list + count, SCA, CA, C.
  const std::uint64_t ints = 2 * in + 1;
  const std::uint64_t bytes = ints * 4 + tokens * 4 + tokens * in + 4 + tokens * out * 4 + 16;
  char* scratch = nullptr;
  cudaError_t e = cudaMallocAsync(reinterpret_cast<void**>(&scratch), bytes, s);
  if (e != cudaSuccess) return "scratch: " + describe(e);
  int* flags = reinterpret_cast<int*>(scratch);
  int* cols = flags + in;
  int* ncols = cols + in;
  float* sca = reinterpret_cast<float*>(ncols + 1);
  signed char* ca = reinterpret_cast<signed char*>(sca + tokens);
  // int32 results 16-byte aligned, as cuBLASLt prefers.
  const std::uintptr_t cpos =
      (reinterpret_cast<std::uintptr_t>(ca + tokens * in) + 15) & ~std::uintptr_t{15};
  int* c = reinterpret_cast<int*>(cpos);
  e = cudaMemsetAsync(flags, 0, in * 4, s);
  if (e == cudaSuccess && threshold > 0.0f)
    flag_outliers<<<blocks_for(tokens * in), 256, 0, s>>>(x, tokens, in, threshold, flags);
  if (e == cudaSuccess) {
    list_outliers<<<1, 1, 0, s>>>(flags, in, cols, ncols);
    quantize_rows<<<static_cast<unsigned>(tokens), 256, 0, s>>>(x, tokens, in, threshold, flags, ca,
                                                                sca);
    const bool with_lt = igemm_lt(ca, w.cb, c, tokens, in, out, s);
    if (used_lt) *used_lt = with_lt;
    if (!with_lt) {
      const dim3 grid(static_cast<unsigned>((out + kTile - 1) / kTile),
                      static_cast<unsigned>((tokens + kTile - 1) / kTile));
      igemm_nt<<<grid, dim3(kTile, kTile), 0, s>>>(ca, w.cb, c, tokens, in, out);
    }
    epilogue<<<blocks_for(tokens * out), 256, 0, s>>>(c, sca, w.scb, w.cb, x, bias, cols, ncols, y,
                                                      tokens, in, out);
    e = cudaGetLastError();
  }
  const cudaError_t f = cudaFreeAsync(scratch, s);
  if (e != cudaSuccess) return describe(e);
  return f == cudaSuccess ? std::string() : describe(f);
}

}  // namespace

bool compiled() noexcept {
  return true;
}

std::vector<std::uint32_t> archs() {
  static const std::uint32_t list[] = {DMEM_PLUGIN_CUDA_ARCHS};
  return {std::begin(list), std::end(list)};
}

std::string dequantize(const Weight& w, void* dst, Float type, void* stream) {
  auto s = static_cast<cudaStream_t>(stream);
  const unsigned long long n = w.out * w.in;
  if (n == 0) return {};
  if (type == Float::f32)
    dequant<<<blocks_for(n), 256, 0, s>>>(w.cb, w.scb, static_cast<float*>(dst), w.out, w.in);
  if (type == Float::f16)
    dequant<<<blocks_for(n), 256, 0, s>>>(w.cb, w.scb, static_cast<__half*>(dst), w.out, w.in);
  if (type == Float::bf16)
    dequant<<<blocks_for(n), 256, 0, s>>>(w.cb, w.scb, static_cast<__nv_bfloat16*>(dst), w.out,
                                          w.in);
  const cudaError_t e = cudaGetLastError();
  return e == cudaSuccess ? std::string() : describe(e);
}

std::string linear(const Weight& w, const void* x, const void* bias, void* y, Float type,
                   std::uint64_t tokens, float threshold, void* stream, bool* used_cublaslt) {
  if (tokens == 0 || w.out == 0) return {};
  auto s = static_cast<cudaStream_t>(stream);
  if (type == Float::f32)
    return run_linear(w, static_cast<const float*>(x), static_cast<const float*>(bias),
                      static_cast<float*>(y), tokens, threshold, s, used_cublaslt);
  if (type == Float::f16)
    return run_linear(w, static_cast<const __half*>(x), static_cast<const __half*>(bias),
                      static_cast<__half*>(y), tokens, threshold, s, used_cublaslt);
  return run_linear(w, static_cast<const __nv_bfloat16*>(x),
                    static_cast<const __nv_bfloat16*>(bias), static_cast<__nv_bfloat16*>(y), tokens,
                    threshold, s, used_cublaslt);
}

}  // namespace dmem_bnb::cuda
