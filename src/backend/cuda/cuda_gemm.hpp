// Internal: the CUDA device's fast linear layer through cuBLASLt. libcublasLt is opened at run
// time (dlopen), like the driver: libdmem then links none of it (half a gigabyte that a host
// may not ship) and still works, more slowly, through the reference kernel where it is missing.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>
#include <memory>
#include <string>

#include "backend/cuda/cuda_kernels.hpp"

namespace dmem::detail {

/// One GEMM y[tokens, out] = x[tokens, in] · w[out, in]^T with f32 output and f32 accumulation.
/// `x` is in the weight's element type (f32, f16 or bf16).
struct GemmArgs {
  const void* w = nullptr;
  const void* x = nullptr;
  Code type = Code::f32;
  float* y = nullptr;
  int tokens = 0;
  int in = 0;
  int out = 0;
};

class CudaGemm {
 public:
  /// Opens libcublasLt and creates a handle; null with `why` filled when it cannot (library
  /// missing, too old, no memory for the workspace). DMEM_CUBLASLT=0 turns it off.
  [[nodiscard]] static std::unique_ptr<CudaGemm> open(std::string& why) noexcept;
  ~CudaGemm();
  CudaGemm(const CudaGemm&) = delete;
  CudaGemm& operator=(const CudaGemm&) = delete;

  /// Queues the GEMM on `stream`. cudaErrorNotSupported when cuBLASLt has no algorithm for this
  /// shape and alignment (the caller then uses the reference kernel); not thread-safe (the
  /// device serialises linear layers).
  [[nodiscard]] cudaError_t run(const GemmArgs& args, cudaStream_t stream) noexcept;
  /// "cuBLASLt 13.0.2" or similar, for logs.
  [[nodiscard]] const std::string& version() const noexcept;

  struct Api;
  struct Plans;

 private:
  CudaGemm() = default;
  std::unique_ptr<Api> api_;
  std::unique_ptr<Plans> plans_;
  void* library_ = nullptr;
  void* handle_ = nullptr;
  void* workspace_ = nullptr;
  std::uint64_t workspace_bytes_ = 0;
  std::string version_;
};

}  // namespace dmem::detail
