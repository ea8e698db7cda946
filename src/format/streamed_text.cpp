#include "format/streamed_text.hpp"

#include <algorithm>
#include <cstring>
#include <string_view>

#include "format/json_util.hpp"

namespace dmem::detail {

namespace {

// Length of the UTF-8 sequence a lead byte starts; 0 for a continuation or invalid byte.
std::size_t sequence_length(unsigned char c) noexcept {
  if (c < 0x80) return 1;
  if (c >= 0xC2 && c <= 0xDF) return 2;
  if (c >= 0xE0 && c <= 0xEF) return 3;
  if (c >= 0xF0 && c <= 0xF4) return 4;
  return 0;
}

// Bytes at the end of [p, p + n) that start a sequence the chunk does not finish.
std::size_t incomplete_tail(const char* p, std::size_t n) noexcept {
  for (std::size_t back = 1; back <= 3 && back <= n; ++back) {
    const auto c = static_cast<unsigned char>(p[n - back]);
    if ((c & 0xC0) == 0x80) continue;  // a continuation byte: look further back
    const std::size_t len = sequence_length(c);
    return len > back ? back : 0;
  }
  return 0;
}

}  // namespace

StreamedText::StreamedText(const ReadFile& file, std::uint64_t offset, std::uint64_t size,
                           std::size_t chunk) noexcept
    : file_(file), offset_(offset), size_(size), chunk_(std::max<std::size_t>(chunk, 8)) {}

std::string StreamedText::peek(std::size_t n) const noexcept {
  std::string out(static_cast<std::size_t>(std::min<std::uint64_t>(n, size_)), '\0');
  if (!file_.read_at(out.data(), out.size(), offset_).is_ok()) out.clear();
  return out;
}

bool StreamedText::at_end() noexcept {
  if (pos_ < len_) return false;
  return !refill();
}

bool StreamedText::refill() noexcept {
  if (!error_.is_ok()) return false;
  if (read_ == size_ && carry_.empty()) return false;
  buf_start_ += len_;
  // The buffer grows with what was really read, never to the claimed size up front.
  const std::uint64_t want = std::min<std::uint64_t>(chunk_, size_ - read_);
  buf_.resize(carry_.size() + static_cast<std::size_t>(want));
  std::memcpy(buf_.data(), carry_.data(), carry_.size());
  const std::size_t carried = carry_.size();
  carry_.clear();
  if (want > 0) {
    if (Status s = file_.read_at(buf_.data() + carried, want, offset_ + read_); !s.is_ok()) {
      error_ = std::move(s);
      return false;
    }
    read_ += want;
  }
  std::size_t n = buf_.size();
  if (read_ < size_) {
    const std::size_t tail = incomplete_tail(buf_.data(), n);
    carry_.assign(buf_.data() + n - tail, tail);
    n -= tail;
  }
  std::size_t bad = 0;
  if (!is_valid_utf8(std::string_view(buf_.data(), n), &bad)) {
    utf8_bad_ = true;
    utf8_offset_ = buf_start_ + bad;
    error_ = Status(Errc::format_error, "invalid UTF-8");
    return false;
  }
  pos_ = 0;
  len_ = n;
  return len_ > 0;
}

}  // namespace dmem::detail
