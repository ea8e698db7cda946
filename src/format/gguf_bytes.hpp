// Byte source for the GGUF parser: one interface over a buffer in memory (parse_gguf, the fuzzer)
// and a file read on demand with pread through a small fixed window (read_gguf).
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "dmem/status.hpp"
#include "format/file_io.hpp"

namespace dmem::detail {

class GgufBytes {
 public:
  /// Bytes owned by the caller, which outlive this object.
  static GgufBytes memory(const void* data, std::size_t size) noexcept;
  /// A file: only the ranges the parser asks for are read, through a window of `window` bytes;
  /// larger requests (long strings) go straight to the destination.
  static GgufBytes file(const ReadFile& file, std::size_t window = 64 * 1024) noexcept;

  [[nodiscard]] std::uint64_t size() const noexcept { return size_; }

  /// Copies `n` bytes at `offset` into `dst`. The caller has checked offset + n <= size().
  [[nodiscard]] Status read(std::uint64_t offset, void* dst, std::uint64_t n) noexcept;

 private:
  const unsigned char* data_ = nullptr;  // memory source
  const ReadFile* file_ = nullptr;       // file source
  std::uint64_t size_ = 0;
  std::vector<unsigned char> window_;
  std::uint64_t window_start_ = 0;
  std::uint64_t window_len_ = 0;
};

}  // namespace dmem::detail
