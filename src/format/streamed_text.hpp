// A byte range of a file read in bounded chunks and checked as UTF-8 on the way, offered to
// nlohmann's SAX parser as an input iterator: header parsing never holds the whole text, and a
// malformed or sparse file is abandoned at the first bad chunk instead of being read entirely.
#pragma once

#include <cstddef>
#include <cstdint>
#include <iterator>
#include <string>
#include <vector>

#include "dmem/status.hpp"
#include "format/file_io.hpp"

namespace dmem::detail {

class StreamedText {
 public:
  /// Bytes [offset, offset + size) of `file`, read `chunk` bytes at a time.
  StreamedText(const ReadFile& file, std::uint64_t offset, std::uint64_t size,
               std::size_t chunk = std::size_t{1} << 20) noexcept;

  /// Why the text ended early: a read error, or invalid UTF-8 (`utf8_error()`); ok otherwise.
  [[nodiscard]] const Status& error() const noexcept { return error_; }
  /// True when error() is bad UTF-8; `utf8_offset()` is then the bad byte's offset in the text.
  [[nodiscard]] bool utf8_error() const noexcept { return utf8_bad_; }
  [[nodiscard]] std::uint64_t utf8_offset() const noexcept { return utf8_offset_; }
  /// The first `n` bytes (n ≤ 4), read directly; for checks before parsing (a byte order mark).
  [[nodiscard]] std::string peek(std::size_t n) const noexcept;

  class Iterator {
   public:
    using iterator_category = std::input_iterator_tag;
    using value_type = char;
    using difference_type = std::ptrdiff_t;
    using pointer = const char*;
    using reference = const char&;

    Iterator() noexcept = default;
    explicit Iterator(StreamedText* text) noexcept : text_(text) {}
    reference operator*() const noexcept { return text_->current(); }
    Iterator& operator++() noexcept {
      text_->advance();
      return *this;
    }
    void operator++(int) noexcept { text_->advance(); }
    // Only comparisons against end() are meaningful: equal once the text is exhausted.
    bool operator==(const Iterator& other) const noexcept { return done() == other.done(); }
    bool operator!=(const Iterator& other) const noexcept { return !(*this == other); }

   private:
    [[nodiscard]] bool done() const noexcept { return text_ == nullptr || text_->at_end(); }
    StreamedText* text_ = nullptr;
  };

  [[nodiscard]] Iterator begin() noexcept { return Iterator(this); }
  [[nodiscard]] Iterator end() noexcept { return Iterator(); }

 private:
  [[nodiscard]] bool at_end() noexcept;
  [[nodiscard]] const char& current() const noexcept { return buf_[pos_]; }
  void advance() noexcept { ++pos_; }
  bool refill() noexcept;

  const ReadFile& file_;
  std::uint64_t offset_;
  std::uint64_t size_;
  std::uint64_t read_ = 0;       // bytes of the range read so far
  std::uint64_t buf_start_ = 0;  // text offset of buf_[0]
  std::vector<char> buf_;
  std::size_t pos_ = 0;
  std::size_t len_ = 0;  // bytes of buf_ that are checked and may be served
  std::size_t chunk_;
  std::string carry_;  // an incomplete UTF-8 sequence at a chunk's end
  Status error_;
  bool utf8_bad_ = false;
  std::uint64_t utf8_offset_ = 0;
};

}  // namespace dmem::detail
