// HostRegion: host memory that goes back to the operating system the moment it is freed (large
// regions are anonymous mappings, so eviction and trim shrink the process at once, as unmapping
// VRAM does on CUDA). Pages are committed when first written, so a region costs what was loaded.
#pragma once

#include <cstddef>
#include <cstdint>

#include "dmem/status.hpp"

namespace dmem::detail {

class HostRegion {
 public:
  HostRegion() noexcept = default;
  HostRegion(HostRegion&& other) noexcept;
  HostRegion& operator=(HostRegion&& other) noexcept;
  HostRegion(const HostRegion&) = delete;
  HostRegion& operator=(const HostRegion&) = delete;
  ~HostRegion();

  /// `bytes` of 64-byte aligned memory; `what` names the store in the error.
  [[nodiscard]] static Result<HostRegion> allocate(std::uint64_t bytes, const char* what) noexcept;

  [[nodiscard]] unsigned char* data() const noexcept { return data_; }
  [[nodiscard]] std::uint64_t size() const noexcept { return size_; }
  void reset() noexcept;

 private:
  unsigned char* data_ = nullptr;
  std::uint64_t size_ = 0;
  bool mapped_ = false;
};

}  // namespace dmem::detail
