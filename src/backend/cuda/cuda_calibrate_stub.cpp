// Builds without CUDA: there is no device to measure, and calibrate says so.
#include "backend/cuda/cuda_calibrate.hpp"

namespace dmem::detail {

Result<CudaCopyRates> cuda_measure_copies(int, std::uint64_t, int) noexcept {
  return Status(Errc::unsupported, "no CUDA device: this build of dmem has no CUDA backend")
      .with_rule("calibrate.device")
      .with_hint("measure the host with --device cpu, or rebuild with DMEM_WITH_CUDA=ON");
}

}  // namespace dmem::detail
