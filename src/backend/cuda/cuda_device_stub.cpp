// Builds without CUDA: the CUDA device is never available, and says so.
#include "backend/cuda/cuda_device.hpp"

namespace dmem::detail {

Result<std::unique_ptr<ComputeDevice>> make_cuda_device(int) noexcept {
  return Status(Errc::unsupported, "this build of dmem has no CUDA backend")
      .with_rule("runtime.device")
      .with_hint(
          "run on the CPU device (--device cpu), or rebuild with the CUDA toolkit present "
          "(DMEM_WITH_CUDA=ON)");
}

bool cuda_device_compiled() noexcept {
  return false;
}

}  // namespace dmem::detail
