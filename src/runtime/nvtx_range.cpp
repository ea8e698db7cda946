#include "runtime/nvtx_range.hpp"

#if DMEM_HAVE_CUDA
#include <nvtx3/nvToolsExt.h>
#endif

namespace dmem::detail {

#if DMEM_HAVE_CUDA
namespace {

nvtxDomainHandle_t domain() noexcept {
  static const nvtxDomainHandle_t d = nvtxDomainCreateA("dmem");
  return d;
}

// One colour per kind, so loads, copies and compute read apart at a glance.
std::uint32_t colour(NvtxKind kind) noexcept {
  switch (kind) {
    case NvtxKind::load:
      return 0xFF4E79A7u;
    case NvtxKind::copy:
      return 0xFFF28E2Bu;
    case NvtxKind::acquire:
      return 0xFFE15759u;
    case NvtxKind::compute:
      return 0xFF59A14Fu;
    case NvtxKind::step:
      return 0xFF9C755Fu;
  }
  return 0xFF888888u;
}

nvtxEventAttributes_t attributes(NvtxKind kind, const char* name) noexcept {
  nvtxEventAttributes_t a{};
  a.version = NVTX_VERSION;
  a.size = NVTX_EVENT_ATTRIB_STRUCT_SIZE;
  a.colorType = NVTX_COLOR_ARGB;
  a.color = colour(kind);
  a.messageType = NVTX_MESSAGE_TYPE_ASCII;
  a.message.ascii = name;
  return a;
}

}  // namespace

NvtxRange::NvtxRange(NvtxKind kind, const char* name) noexcept {
  const nvtxEventAttributes_t a = attributes(kind, name);
  pushed_ = nvtxDomainRangePushEx(domain(), &a) >= 0;
}

NvtxRange::~NvtxRange() {
  if (pushed_) nvtxDomainRangePop(domain());
}

std::uint64_t nvtx_start(NvtxKind kind, const char* name) noexcept {
  const nvtxEventAttributes_t a = attributes(kind, name);
  return nvtxDomainRangeStartEx(domain(), &a);
}

void nvtx_end(std::uint64_t id) noexcept {
  if (id != 0) nvtxDomainRangeEnd(domain(), id);
}
#else
NvtxRange::NvtxRange(NvtxKind /*kind*/, const char* /*name*/) noexcept {}
NvtxRange::~NvtxRange() = default;
std::uint64_t nvtx_start(NvtxKind /*kind*/, const char* /*name*/) noexcept {
  return 0;
}
void nvtx_end(std::uint64_t /*id*/) noexcept {}
#endif

}  // namespace dmem::detail
