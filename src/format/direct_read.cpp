#include "format/direct_read.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <string>
#include <utility>

namespace dmem::detail {

DirectFile::DirectFile(DirectFile&& other) noexcept
    : fd_(std::exchange(other.fd_, -1)), buffered_(std::exchange(other.buffered_, nullptr)) {}

DirectFile& DirectFile::operator=(DirectFile&& other) noexcept {
  if (this != &other) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = std::exchange(other.fd_, -1);
    buffered_ = std::exchange(other.buffered_, nullptr);
  }
  return *this;
}

DirectFile::~DirectFile() {
  if (fd_ >= 0) ::close(fd_);
}

Result<DirectFile> DirectFile::open(const ReadFile& file) noexcept {
  // Through /proc/self/fd: the file that was validated, even if its path now names another one.
  std::string proc = "/proc/self/fd/";
  proc += std::to_string(file.fd());
  int fd;
  do {
    fd = ::open(proc.c_str(), O_RDONLY | O_CLOEXEC | O_DIRECT);
  } while (fd < 0 && errno == EINTR);
  if (fd < 0) {
    const int err = errno;
    if (err == EINVAL || err == EOPNOTSUPP) {
      return Status(Errc::unsupported, "the file system does not support direct I/O (O_DIRECT)")
          .with_file(file.path())
          .with_rule("file.direct_io")
          .with_hint("the file is read through the page cache instead");
    }
    return os_error("cannot reopen for direct I/O", file.path(), err);
  }
  struct stat st {};
  if (::fstat(fd, &st) != 0 || static_cast<std::uint64_t>(st.st_dev) != file.device() ||
      static_cast<std::uint64_t>(st.st_ino) != file.inode()) {
    ::close(fd);
    return Status(Errc::unsupported, "could not reopen the same file for direct I/O")
        .with_file(file.path())
        .with_rule("file.direct_io")
        .with_hint("the file is read through the page cache instead");
  }
  DirectFile direct;
  direct.fd_ = fd;
  direct.buffered_ = &file;
  return direct;
}

Result<const unsigned char*> DirectFile::read(unsigned char* buf, std::uint64_t cap,
                                              std::uint64_t size,
                                              std::uint64_t offset) const noexcept {
  if (buffered_ == nullptr) {
    return Status(Errc::invalid_argument, "read from a closed DirectFile").with_rule("file.io");
  }
  const std::uint64_t lo = offset & ~(kDirectAlign - 1);
  const std::uint64_t end = offset + size;
  const std::uint64_t hi = (end + kDirectAlign - 1) & ~(kDirectAlign - 1);
  const bool aligned_buf = (reinterpret_cast<std::uintptr_t>(buf) & (kDirectAlign - 1)) == 0;
  if (end < offset || hi < end || hi - lo > cap || !aligned_buf ||
      hi > static_cast<std::uint64_t>(INT64_MAX)) {
    DMEM_TRY(buffered_->read_at(buf, size, offset));
    return static_cast<const unsigned char*>(buf);
  }
  if (size == 0) return static_cast<const unsigned char*>(buf);
  // The last block may run past the end of the file: the kernel then returns fewer bytes, which
  // is fine as long as the ones asked for arrived.
  std::uint64_t got = 0;
  const std::uint64_t need = end - lo;
  while (got < need) {
    const ssize_t n = ::pread(fd_, buf + got, static_cast<std::size_t>(hi - lo - got),
                              static_cast<off_t>(lo + got));
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EINVAL) {  // an alignment this device will not take: read it buffered
        DMEM_TRY(buffered_->read_at(buf, size, offset));
        return static_cast<const unsigned char*>(buf);
      }
      Status status = os_error("cannot read", buffered_->path(), errno);
      return std::move(status.with_offset(lo + got));
    }
    if (n == 0) {
      return Status(Errc::format_error, "the file ends at byte " + std::to_string(lo + got) +
                                            " but " + std::to_string(need - got) +
                                            " more bytes were expected there")
          .with_file(buffered_->path())
          .with_offset(lo + got)
          .with_rule("file.truncated")
          .with_hint("the file is truncated or was changed while open: re-download it");
    }
    got += static_cast<std::uint64_t>(n);
    // A short read that is not a multiple of the block leaves the next pread misaligned.
    if (got < need && (got & (kDirectAlign - 1)) != 0) {
      DMEM_TRY(buffered_->read_at(buf + (offset - lo), size, offset));
      return static_cast<const unsigned char*>(buf + (offset - lo));
    }
  }
  return static_cast<const unsigned char*>(buf + (offset - lo));
}

}  // namespace dmem::detail
