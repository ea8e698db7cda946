// Internal file helpers for format readers and writers: read-only files read with pread, and
// temporary files committed by rename. Every failure is a Status naming the path.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "dmem/status.hpp"

namespace dmem::detail {

/// Status for a failed OS call: `what` ("cannot open") + path + the OS's reason. ENOENT maps to
/// Errc::not_found, everything else to Errc::io_error. Sets the file and rule "file.io".
[[nodiscard]] Status os_error(std::string_view what, std::string_view path, int err) noexcept;

/// Status for a path that is not a regular file (`mode` from stat): names what it is (folder,
/// FIFO, device, socket), Errc::io_error, rule "file.not_regular".
[[nodiscard]] Status not_regular_error(std::string_view path, unsigned mode) noexcept;

/// False only when nothing at all is at `path` (stat fails with ENOENT). A folder, FIFO or
/// unreadable entry where a file is expected counts as present, so that reading it reports why
/// it is unusable instead of silently ignoring it.
[[nodiscard]] bool path_present(const std::string& path) noexcept;

/// Status for a writer's rejected input: Errc::invalid_argument with the destination file, the
/// rule id and (when given) the tensor.
[[nodiscard]] Status writer_input_error(std::string message, std::string_view path,
                                        const char* rule, const std::string& tensor = {});

/// A regular file opened read-only (close-on-exec). Move-only; closes on destruction.
class ReadFile {
 public:
  ReadFile() noexcept = default;
  ReadFile(ReadFile&& other) noexcept;
  ReadFile& operator=(ReadFile&& other) noexcept;
  ReadFile(const ReadFile&) = delete;
  ReadFile& operator=(const ReadFile&) = delete;
  ~ReadFile();

  /// Opens `path`; fails for missing files, directories and other non-regular files.
  [[nodiscard]] static Result<ReadFile> open(std::string_view path) noexcept;

  [[nodiscard]] bool is_open() const noexcept { return fd_ >= 0; }
  [[nodiscard]] int fd() const noexcept { return fd_; }
  [[nodiscard]] const std::string& path() const noexcept { return path_; }
  /// Size when the file was opened.
  [[nodiscard]] std::uint64_t size() const noexcept { return size_; }
  /// Identity of the opened file (after links): equal for every spelling of one file.
  [[nodiscard]] std::uint64_t device() const noexcept { return dev_; }
  [[nodiscard]] std::uint64_t inode() const noexcept { return ino_; }

  /// Reads exactly `size` bytes at `offset`, retrying short reads and EINTR. A file that ends
  /// first gives Errc::format_error with rule "file.truncated" and the offset where it ended.
  [[nodiscard]] Status read_at(void* dst, std::uint64_t size, std::uint64_t offset) const noexcept;

 private:
  int fd_ = -1;
  std::uint64_t size_ = 0;
  std::uint64_t dev_ = 0;
  std::uint64_t ino_ = 0;
  std::string path_;
};

/// Reads exactly `size` bytes at `offset` of `fd` (EINTR and short reads retried); `path` names
/// the file in errors.
[[nodiscard]] Status pread_exact(int fd, void* dst, std::uint64_t size, std::uint64_t offset,
                                 std::string_view path) noexcept;

/// Reads a whole small file (a JSON index or config) after checking its size against
/// `max_bytes` before allocating; a larger file fails with Errc::limit_exceeded.
[[nodiscard]] Result<std::string> read_small_file(std::string_view path,
                                                  std::uint64_t max_bytes) noexcept;

/// Checks that `path` may be replaced by a file: it does not exist yet (its folder does), or it is
/// a regular file (through a symbolic link: the link is replaced, never written through). A
/// folder, FIFO, device or socket is refused with Errc::invalid_argument, rule
/// "file.write_target".
[[nodiscard]] Status check_write_target(std::string_view path) noexcept;

/// The one way dmem writes a file: a new file with an unpredictable name created with
/// O_EXCL|O_NOFOLLOW in the destination's folder, written, fsync'ed and renamed over the
/// destination by commit(). The destination is checked with check_write_target() before and
/// again right before the rename. A failed write (disk full, EFBIG) or an uncommitted TempFile
/// removes the temporary file; the destination is then untouched.
class TempFile {
 public:
  TempFile() noexcept = default;
  TempFile(TempFile&& other) noexcept;
  TempFile& operator=(TempFile&& other) noexcept;
  TempFile(const TempFile&) = delete;
  TempFile& operator=(const TempFile&) = delete;
  ~TempFile();

  /// Creates "<folder>/.<name>.<random>.tmp" exclusively (never through a link).
  [[nodiscard]] static Result<TempFile> create(std::string_view final_path) noexcept;

  /// Appends `size` bytes (retries short writes and EINTR). On failure the temporary file is
  /// already removed and the error (rule "file.write") names the destination.
  [[nodiscard]] Status write(const void* data, std::uint64_t size) noexcept;
  /// Writes `size` bytes at byte `offset` (pwrite; the file position is unchanged), for writers
  /// that lay out a header first and fill the data in another order. Failure as write().
  [[nodiscard]] Status write_at(std::uint64_t offset, const void* data,
                                std::uint64_t size) noexcept;
  /// Reserves `size` bytes of disk up front (posix_fallocate), so a full disk fails before any
  /// work; file systems without fallocate are not an error. Failure as write().
  [[nodiscard]] Status allocate(std::uint64_t size) noexcept;
  /// Flushes to disk, closes and renames onto the final path.
  [[nodiscard]] Status commit() noexcept;

  [[nodiscard]] const std::string& temp_path() const noexcept { return temp_path_; }
  [[nodiscard]] const std::string& final_path() const noexcept { return final_path_; }

 private:
  void discard() noexcept;
  [[nodiscard]] Status write_failed(int err) noexcept;

  int fd_ = -1;
  std::string temp_path_;
  std::string final_path_;
};

/// Writes `bytes` to `path` through a TempFile: all or nothing.
[[nodiscard]] Status write_file_atomic(std::string_view path, std::string_view bytes) noexcept;

/// Little-endian u64 load/store used by both binary formats.
[[nodiscard]] std::uint64_t load_le64(const unsigned char* p) noexcept;
void store_le64(unsigned char* p, std::uint64_t v) noexcept;

}  // namespace dmem::detail
