// Reads that bypass the page cache (O_DIRECT). Loading a checkpoint larger than the free RAM
// through the page cache evicts every other program's cached files and makes the load's real
// memory cost invisible; a direct read costs only the caller's buffer. The kernel wants the file
// offset, the length and the buffer aligned to the device's logical block, so callers pass an
// aligned buffer with slack and get back where the bytes they asked for start inside it.
#pragma once

#include <cstdint>
#include <string>

#include "dmem/status.hpp"
#include "format/file_io.hpp"

namespace dmem::detail {

/// Alignment used for direct reads: a multiple of every logical block size in use (512, 4096).
inline constexpr std::uint64_t kDirectAlign = 4096;

/// Bytes a kDirectAlign-aligned buffer needs to read `size` bytes at any offset directly.
[[nodiscard]] constexpr std::uint64_t direct_span(std::uint64_t size) noexcept {
  return size + 2 * kDirectAlign;
}

/// A second, O_DIRECT descriptor of a file already opened by ReadFile (the same inode: it is
/// reopened through /proc/self/fd, never by path). Move-only.
class DirectFile {
 public:
  DirectFile() noexcept = default;
  DirectFile(DirectFile&& other) noexcept;
  DirectFile& operator=(DirectFile&& other) noexcept;
  DirectFile(const DirectFile&) = delete;
  DirectFile& operator=(const DirectFile&) = delete;
  ~DirectFile();

  [[nodiscard]] bool is_open() const noexcept { return fd_ >= 0; }

  /// Errc::unsupported (rule "file.direct_io") when the file system refuses O_DIRECT (tmpfs on
  /// older kernels, some network file systems): callers fall back to buffered reads.
  [[nodiscard]] static Result<DirectFile> open(const ReadFile& file) noexcept;

  /// Reads bytes [offset, offset + size) into `buf` (kDirectAlign-aligned, `cap` bytes, at least
  /// direct_span(size)) and returns where they start inside it. A read the kernel refuses for
  /// alignment falls back to a buffered read of exactly those bytes into `buf`. A file that ends
  /// first is Errc::format_error, rule "file.truncated", as for ReadFile::read_at.
  [[nodiscard]] Result<const unsigned char*> read(unsigned char* buf, std::uint64_t cap,
                                                  std::uint64_t size,
                                                  std::uint64_t offset) const noexcept;

 private:
  int fd_ = -1;
  const ReadFile* buffered_ = nullptr;
};

}  // namespace dmem::detail
