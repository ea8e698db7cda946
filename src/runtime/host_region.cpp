#include "runtime/host_region.hpp"

#include <sys/mman.h>

#include <cstdlib>
#include <string>
#include <utility>

namespace dmem::detail {
namespace {
// Below this, malloc's pools are cheaper than a mapping and return memory soon enough.
constexpr std::uint64_t kMapThreshold = 256u << 10;
}  // namespace

HostRegion::HostRegion(HostRegion&& other) noexcept
    : data_(std::exchange(other.data_, nullptr)),
      size_(std::exchange(other.size_, 0)),
      mapped_(std::exchange(other.mapped_, false)) {}

HostRegion& HostRegion::operator=(HostRegion&& other) noexcept {
  if (this != &other) {
    reset();
    data_ = std::exchange(other.data_, nullptr);
    size_ = std::exchange(other.size_, 0);
    mapped_ = std::exchange(other.mapped_, false);
  }
  return *this;
}

HostRegion::~HostRegion() {
  reset();
}

void HostRegion::reset() noexcept {
  if (data_ != nullptr) {
    if (mapped_) {
      ::munmap(data_, size_);
    } else {
      std::free(data_);
    }
  }
  data_ = nullptr;
  size_ = 0;
  mapped_ = false;
}

Result<HostRegion> HostRegion::allocate(std::uint64_t bytes, const char* what) noexcept {
  HostRegion region;
  if (bytes == 0) return region;
  if (bytes >= kMapThreshold) {
    void* p = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p != MAP_FAILED) {
      region.data_ = static_cast<unsigned char*>(p);
      region.mapped_ = true;
    }
  } else {
    region.data_ = static_cast<unsigned char*>(std::aligned_alloc(64, (bytes + 63) / 64 * 64));
  }
  if (region.data_ == nullptr) {
    std::string message = "could not allocate ";
    message += std::to_string(bytes);
    message += " bytes of ";
    message += what;
    return Status(Errc::out_of_memory, std::move(message))
        .with_rule("runtime.alloc")
        .with_hint("free memory, or choose a plan that keeps less in this store");
  }
  region.size_ = bytes;
  return region;
}

}  // namespace dmem::detail
