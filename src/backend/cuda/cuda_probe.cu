// CUDA build: ask the runtime for devices, memory and compute capability.
#include <cuda_runtime.h>

#include "backend/cuda/cuda_probe.hpp"
#include "cuda_archs.hpp"  // generated in the build tree

namespace dmem::detail {

namespace {
// Reports __CUDA_ARCH__ of the SASS or PTX image the driver picked for this device.
__global__ void arch_kernel(int* out) {
#ifdef __CUDA_ARCH__
  *out = __CUDA_ARCH__;
#endif
}
}  // namespace

bool cuda_compiled() noexcept {
  return true;
}

std::vector<CudaDeviceInfo> cuda_devices(std::string* error) noexcept {
  std::vector<CudaDeviceInfo> out;
  int count = 0;
  cudaError_t err = cudaGetDeviceCount(&count);
  if (err != cudaSuccess) {
    if (error) *error = cudaGetErrorString(err);
    cudaGetLastError();
    return out;
  }
  for (int i = 0; i < count; ++i) {
    cudaDeviceProp prop{};
    if (cudaGetDeviceProperties(&prop, i) != cudaSuccess) continue;
    CudaDeviceInfo info;
    info.index = i;
    info.name = prop.name;
    info.cc_major = prop.major;
    info.cc_minor = prop.minor;
    info.total_bytes = prop.totalGlobalMem;
    int previous = 0;
    cudaGetDevice(&previous);
    if (cudaSetDevice(i) == cudaSuccess) {
      size_t free_b = 0, total_b = 0;
      if (cudaMemGetInfo(&free_b, &total_b) == cudaSuccess) {
        info.free_bytes = free_b;
        info.total_bytes = total_b;
      }
    }
    cudaSetDevice(previous);
    out.push_back(std::move(info));
  }
  return out;
}

std::vector<int> cuda_compiled_archs() noexcept {
  std::vector<int> archs;
  static constexpr int kArchs[] = {DMEM_CUDA_ARCH_LIST};
  for (int a : kArchs) archs.push_back(a);
  return archs;
}

// Runs a trivial kernel on `device` and returns the __CUDA_ARCH__ it executed, or -1.
int cuda_running_arch(int device) noexcept {
  if (cudaSetDevice(device) != cudaSuccess) return -1;
  int* d = nullptr;
  if (cudaMalloc(&d, sizeof(int)) != cudaSuccess) return -1;
  int h = -1;
  cudaMemcpy(d, &h, sizeof(int), cudaMemcpyHostToDevice);
  arch_kernel<<<1, 1>>>(d);
  if (cudaDeviceSynchronize() == cudaSuccess)
    cudaMemcpy(&h, d, sizeof(int), cudaMemcpyDeviceToHost);
  cudaFree(d);
  cudaGetLastError();
  return h;
}

}  // namespace dmem::detail
