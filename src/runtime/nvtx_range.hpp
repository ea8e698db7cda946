// NVTX ranges name dmem's work (loads, copies, acquires, linear layers, steps) so that Nsight
// Systems shows it on the host's timeline beside the host's own kernels. Built on the CUDA
// toolkit's header-only NVTX 3: with no profiler attached a range is an indirect call to an empty
// function; in a build without CUDA it is nothing at all.
#pragma once

#include <cstdint>

namespace dmem::detail {

enum class NvtxKind : std::uint8_t { load, copy, acquire, compute, step };

/// A push/pop range on the calling thread, in dmem's NVTX domain ("dmem").
class NvtxRange {
 public:
  NvtxRange(NvtxKind kind, const char* name) noexcept;
  ~NvtxRange();
  NvtxRange(const NvtxRange&) = delete;
  NvtxRange& operator=(const NvtxRange&) = delete;

 private:
  [[maybe_unused]] bool pushed_ = false;
};

/// A range that may end on another thread or call (a denoising step); 0 when NVTX is absent.
[[nodiscard]] std::uint64_t nvtx_start(NvtxKind kind, const char* name) noexcept;
void nvtx_end(std::uint64_t id) noexcept;

}  // namespace dmem::detail
