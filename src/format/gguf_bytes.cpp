#include "format/gguf_bytes.hpp"

#include <algorithm>
#include <cstring>

namespace dmem::detail {

GgufBytes GgufBytes::memory(const void* data, std::size_t size) noexcept {
  GgufBytes bytes;
  bytes.data_ = static_cast<const unsigned char*>(data);
  bytes.size_ = data != nullptr ? size : 0;
  return bytes;
}

GgufBytes GgufBytes::file(const ReadFile& file, std::size_t window) noexcept {
  GgufBytes bytes;
  bytes.file_ = &file;
  bytes.size_ = file.size();
  bytes.window_.resize(std::max<std::size_t>(window, 64));
  return bytes;
}

Status GgufBytes::read(std::uint64_t offset, void* dst, std::uint64_t n) noexcept {
  if (n == 0) return Status::ok();
  if (offset > size_ || n > size_ - offset) {
    return Status(Errc::internal, "GGUF parser read past the end of its input").with_offset(offset);
  }
  if (data_ != nullptr) {
    std::memcpy(dst, data_ + offset, static_cast<std::size_t>(n));
    return Status::ok();
  }
  if (file_ == nullptr) return Status(Errc::internal, "GGUF byte source has no input");

  // Served from the window when it holds the whole range.
  if (offset >= window_start_ && offset - window_start_ <= window_len_ &&
      n <= window_len_ - (offset - window_start_)) {
    std::memcpy(dst, window_.data() + (offset - window_start_), static_cast<std::size_t>(n));
    return Status::ok();
  }
  if (n >= window_.size()) return file_->read_at(dst, n, offset);

  const std::uint64_t len = std::min<std::uint64_t>(window_.size(), size_ - offset);
  window_len_ = 0;  // stays empty if the read fails
  DMEM_TRY(file_->read_at(window_.data(), len, offset));
  window_start_ = offset;
  window_len_ = len;
  std::memcpy(dst, window_.data(), static_cast<std::size_t>(n));
  return Status::ok();
}

}  // namespace dmem::detail
