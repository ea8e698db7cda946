// CPU-only build: no CUDA devices.
#include "backend/cuda/cuda_probe.hpp"

namespace dmem::detail {
bool cuda_compiled() noexcept {
  return false;
}
std::vector<CudaDeviceInfo> cuda_devices(std::string* error) noexcept {
  if (error) *error = "this build of dmem has no CUDA backend (configure with DMEM_WITH_CUDA=ON)";
  return {};
}
std::vector<int> cuda_compiled_archs() noexcept {
  return {};
}
}  // namespace dmem::detail
namespace dmem::detail {
int cuda_running_arch(int) noexcept {
  return -1;
}
}  // namespace dmem::detail
