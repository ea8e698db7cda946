// Internal: what the CUDA runtime reports about the devices of this machine.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace dmem::detail {

struct CudaDeviceInfo {
  int index = 0;
  std::string name;
  int cc_major = 0;
  int cc_minor = 0;
  std::uint64_t total_bytes = 0;
  std::uint64_t free_bytes = 0;
  int pci_gen = 0;  ///< 0 when unknown
  int pci_width = 0;
};

/// True when this build has the CUDA backend compiled in.
bool cuda_compiled() noexcept;
/// Devices visible to the runtime; empty with no driver, no device or a CPU-only build.
/// `error` receives the runtime's reason when it reports one.
std::vector<CudaDeviceInfo> cuda_devices(std::string* error = nullptr) noexcept;
/// The architectures this build carries SASS for (e.g. 75, 80, ... 120) and the PTX ones.
std::vector<int> cuda_compiled_archs() noexcept;
/// Runs a trivial kernel on `device`; returns the __CUDA_ARCH__ it ran with, or -1 on failure.
int cuda_running_arch(int device) noexcept;

}  // namespace dmem::detail
