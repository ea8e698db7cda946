// cuBLASLt through dlopen: the entry points are looked up by name and called through pointers of
// the header's own types, so a mismatch is a compile error here, not a crash there.
#include "backend/cuda/cuda_gemm.hpp"

#include <cublasLt.h>
#include <dlfcn.h>

#include <cstdlib>
#include <map>
#include <new>
#include <tuple>

namespace dmem::detail {

struct CudaGemm::Api {
  decltype(&cublasLtCreate) create = nullptr;
  decltype(&cublasLtDestroy) destroy = nullptr;
  decltype(&cublasLtGetVersion) get_version = nullptr;
  decltype(&cublasLtMatmulDescCreate) desc_create = nullptr;
  decltype(&cublasLtMatmulDescDestroy) desc_destroy = nullptr;
  decltype(&cublasLtMatmulDescSetAttribute) desc_set = nullptr;
  decltype(&cublasLtMatrixLayoutCreate) layout_create = nullptr;
  decltype(&cublasLtMatrixLayoutDestroy) layout_destroy = nullptr;
  decltype(&cublasLtMatmulPreferenceCreate) pref_create = nullptr;
  decltype(&cublasLtMatmulPreferenceDestroy) pref_destroy = nullptr;
  decltype(&cublasLtMatmulPreferenceSetAttribute) pref_set = nullptr;
  decltype(&cublasLtMatmulAlgoGetHeuristic) heuristic = nullptr;
  decltype(&cublasLtMatmul) matmul = nullptr;
};

namespace {

// A plan: descriptors and the heuristic's first algorithm for one shape, type and alignment.
struct Plan {
  cublasLtMatmulDesc_t desc = nullptr;
  cublasLtMatrixLayout_t a = nullptr, b = nullptr, d = nullptr;
  cublasLtMatmulAlgo_t algo{};
  bool found = false;
};

using PlanKey = std::tuple<int, int, int, int, unsigned, unsigned, unsigned>;

void destroy_plan(const CudaGemm::Api& f, Plan& plan) {
  if (plan.a != nullptr) f.layout_destroy(plan.a);
  if (plan.b != nullptr) f.layout_destroy(plan.b);
  if (plan.d != nullptr) f.layout_destroy(plan.d);
  if (plan.desc != nullptr) f.desc_destroy(plan.desc);
  plan = Plan{};
}

template <class Fn>
bool symbol(void* library, const char* name, Fn& fn) {
  fn = reinterpret_cast<Fn>(dlsym(library, name));
  return fn != nullptr;
}

cudaDataType_t data_type(Code c) {
  switch (c) {
    case Code::f16:
      return CUDA_R_16F;
    case Code::bf16:
      return CUDA_R_16BF;
    default:
      return CUDA_R_32F;
  }
}

// The largest power of two (up to 256) dividing the address: cuBLASLt picks kernels whose vector
// loads this alignment allows.
unsigned alignment(const void* p) {
  const auto v = reinterpret_cast<std::uintptr_t>(p);
  unsigned a = 256;
  while (a > 1 && (v % a) != 0) a /= 2;
  return a;
}

}  // namespace

struct CudaGemm::Plans {
  std::map<PlanKey, Plan> cache;
};

std::unique_ptr<CudaGemm> CudaGemm::open(std::string& why) noexcept {
  if (const char* env = std::getenv("DMEM_CUBLASLT"); env != nullptr && env[0] == '0') {
    why = "turned off by DMEM_CUBLASLT=0";
    return nullptr;
  }
  const std::string major = std::to_string(CUBLAS_VER_MAJOR);
  const std::string names[] = {"libcublasLt.so." + major, "libcublasLt.so",
                               "/usr/local/cuda/lib64/libcublasLt.so." + major};
  void* library = nullptr;
  for (const std::string& name : names)
    if ((library = dlopen(name.c_str(), RTLD_NOW | RTLD_LOCAL)) != nullptr) break;
  if (library == nullptr) {
    why = "libcublasLt.so." + major +
          " not found (install the CUDA toolkit's cuBLAS, or add its "
          "folder to LD_LIBRARY_PATH)";
    return nullptr;
  }
  auto api = std::unique_ptr<Api>(new (std::nothrow) Api);
  auto plans = std::unique_ptr<Plans>(new (std::nothrow) Plans);
  if (!api || !plans) {
    dlclose(library);
    why = "out of host memory";
    return nullptr;
  }
  Api& f = *api;
  const bool ok = symbol(library, "cublasLtCreate", f.create) &&
                  symbol(library, "cublasLtDestroy", f.destroy) &&
                  symbol(library, "cublasLtGetVersion", f.get_version) &&
                  symbol(library, "cublasLtMatmulDescCreate", f.desc_create) &&
                  symbol(library, "cublasLtMatmulDescDestroy", f.desc_destroy) &&
                  symbol(library, "cublasLtMatmulDescSetAttribute", f.desc_set) &&
                  symbol(library, "cublasLtMatrixLayoutCreate", f.layout_create) &&
                  symbol(library, "cublasLtMatrixLayoutDestroy", f.layout_destroy) &&
                  symbol(library, "cublasLtMatmulPreferenceCreate", f.pref_create) &&
                  symbol(library, "cublasLtMatmulPreferenceDestroy", f.pref_destroy) &&
                  symbol(library, "cublasLtMatmulPreferenceSetAttribute", f.pref_set) &&
                  symbol(library, "cublasLtMatmulAlgoGetHeuristic", f.heuristic) &&
                  symbol(library, "cublasLtMatmul", f.matmul);
  if (!ok) {
    dlclose(library);
    why = "libcublasLt lacks an entry point dmem needs (too old)";
    return nullptr;
  }
  const std::size_t v = f.get_version();
  if (v / 10000 != CUBLAS_VER_MAJOR) {
    dlclose(library);
    why = "libcublasLt " + std::to_string(v / 10000) + " found, this build needs " + major;
    return nullptr;
  }
  cublasLtHandle_t handle = nullptr;
  if (f.create(&handle) != CUBLAS_STATUS_SUCCESS) {
    dlclose(library);
    why = "cublasLtCreate failed";
    return nullptr;
  }
  // 32 MiB: what NVIDIA recommends for Hopper; smaller GPUs use a part of it.
  constexpr std::uint64_t kWorkspace = 32ull << 20;
  void* workspace = nullptr;
  if (cudaMalloc(&workspace, kWorkspace) != cudaSuccess) {
    cudaGetLastError();
    f.destroy(handle);
    dlclose(library);
    why = "no device memory for cuBLASLt's 32 MiB workspace";
    return nullptr;
  }
  auto gemm = std::unique_ptr<CudaGemm>(new (std::nothrow) CudaGemm);
  if (!gemm) {
    cudaFree(workspace);
    f.destroy(handle);
    dlclose(library);
    why = "out of host memory";
    return nullptr;
  }
  gemm->api_ = std::move(api);
  gemm->plans_ = std::move(plans);
  gemm->library_ = library;
  gemm->handle_ = handle;
  gemm->workspace_ = workspace;
  gemm->workspace_bytes_ = kWorkspace;
  gemm->version_ = "cuBLASLt " + std::to_string(v / 10000) + "." + std::to_string(v / 100 % 100) +
                   "." + std::to_string(v % 100);
  return gemm;
}

CudaGemm::~CudaGemm() {
  if (api_) {
    for (auto& [key, plan] : plans_->cache) destroy_plan(*api_, plan);
    api_->destroy(static_cast<cublasLtHandle_t>(handle_));
  }
  if (workspace_ != nullptr) cudaFree(workspace_);
  // The library stays loaded: a static destructor elsewhere may still hold a cuBLASLt callback.
}

const std::string& CudaGemm::version() const noexcept {
  return version_;
}

cudaError_t CudaGemm::run(const GemmArgs& g, cudaStream_t stream) noexcept {
  const Api& f = *api_;
  const PlanKey key{static_cast<int>(g.type), g.tokens,       g.in,          g.out,
                    alignment(g.w),           alignment(g.x), alignment(g.y)};
  auto it = plans_->cache.find(key);
  if (it == plans_->cache.end()) {
    // Bounded: a host that runs many token counts should not grow this forever.
    if (plans_->cache.size() >= 512) {
      for (auto& [k, plan] : plans_->cache) destroy_plan(f, plan);
      plans_->cache.clear();
    }
    Plan plan;
    const cudaDataType_t t = data_type(g.type);
    // Column-major view of row-major data: W[out, in] is an in×out matrix (used transposed),
    // X[tokens, in] an in×tokens matrix and Y[tokens, out] an out×tokens one.
    bool ok = f.desc_create(&plan.desc, CUBLAS_COMPUTE_32F, CUDA_R_32F) == CUBLAS_STATUS_SUCCESS;
    const cublasOperation_t transpose = CUBLAS_OP_T, keep = CUBLAS_OP_N;
    ok = ok &&
         f.desc_set(plan.desc, CUBLASLT_MATMUL_DESC_TRANSA, &transpose, sizeof(transpose)) ==
             CUBLAS_STATUS_SUCCESS &&
         f.desc_set(plan.desc, CUBLASLT_MATMUL_DESC_TRANSB, &keep, sizeof(keep)) ==
             CUBLAS_STATUS_SUCCESS;
    ok = ok && f.layout_create(&plan.a, t, g.in, g.out, g.in) == CUBLAS_STATUS_SUCCESS;
    ok = ok && f.layout_create(&plan.b, t, g.in, g.tokens, g.in) == CUBLAS_STATUS_SUCCESS;
    ok =
        ok && f.layout_create(&plan.d, CUDA_R_32F, g.out, g.tokens, g.out) == CUBLAS_STATUS_SUCCESS;
    cublasLtMatmulPreference_t pref = nullptr;
    ok = ok && f.pref_create(&pref) == CUBLAS_STATUS_SUCCESS;
    if (ok) {
      const std::uint64_t ws = workspace_bytes_;
      const std::uint32_t aa = std::get<4>(key), ab = std::get<5>(key), ad = std::get<6>(key);
      f.pref_set(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ws, sizeof(ws));
      f.pref_set(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, &aa, sizeof(aa));
      f.pref_set(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES, &ab, sizeof(ab));
      f.pref_set(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, &ad, sizeof(ad));
      f.pref_set(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES, &ad, sizeof(ad));
      cublasLtMatmulHeuristicResult_t result{};
      int found = 0;
      if (f.heuristic(static_cast<cublasLtHandle_t>(handle_), plan.desc, plan.a, plan.b, plan.d,
                      plan.d, pref, 1, &result, &found) == CUBLAS_STATUS_SUCCESS &&
          found > 0) {
        plan.algo = result.algo;
        plan.found = true;
      }
    }
    if (pref != nullptr) f.pref_destroy(pref);
    it = plans_->cache.emplace(key, plan).first;
  }
  const Plan& plan = it->second;
  if (!plan.found) return cudaErrorNotSupported;
  const float alpha = 1.0f, beta = 0.0f;
  const cublasStatus_t s =
      f.matmul(static_cast<cublasLtHandle_t>(handle_), plan.desc, &alpha, g.w, plan.a, g.x, plan.b,
               &beta, g.y, plan.d, g.y, plan.d, &plan.algo, workspace_,
               static_cast<std::size_t>(workspace_bytes_), stream);
  if (s == CUBLAS_STATUS_SUCCESS) return cudaSuccess;
  return s == CUBLAS_STATUS_NOT_SUPPORTED ? cudaErrorNotSupported : cudaErrorLaunchFailure;
}

}  // namespace dmem::detail
