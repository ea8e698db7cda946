#include "format/file_io.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdint>
#include <system_error>
#include <utility>

namespace dmem::detail {

namespace {

// One read or write call moves at most this much: Linux caps a single call near 2 GiB anyway.
constexpr std::uint64_t kMaxChunk = 1ull << 30;

void close_fd(int fd) noexcept {
  if (fd >= 0) ::close(fd);
}

}  // namespace

Status os_error(std::string_view what, std::string_view path, int err) noexcept {
  const Errc code = err == ENOENT ? Errc::not_found : Errc::io_error;
  std::string message(what);
  message += " '";
  message += path;
  message += "': ";
  message += std::generic_category().message(err);
  Status status(code, std::move(message));
  status.with_file(std::string(path)).with_rule("file.io");
  if (err == ENOENT) status.with_hint("check the path");
  if (err == EACCES || err == EPERM) status.with_hint("check the file's permissions");
  return status;
}

// ---- ReadFile ----------------------------------------------------------------------------------

ReadFile::ReadFile(ReadFile&& other) noexcept
    : fd_(std::exchange(other.fd_, -1)), size_(other.size_), path_(std::move(other.path_)) {}

ReadFile& ReadFile::operator=(ReadFile&& other) noexcept {
  if (this != &other) {
    close_fd(fd_);
    fd_ = std::exchange(other.fd_, -1);
    size_ = other.size_;
    path_ = std::move(other.path_);
  }
  return *this;
}

ReadFile::~ReadFile() {
  close_fd(fd_);
}

Result<ReadFile> ReadFile::open(std::string_view path) noexcept {
  ReadFile file;
  file.path_ = std::string(path);
  // O_NONBLOCK keeps open() from hanging on a FIFO; it is cleared once we know the file is regular.
  int fd;
  do {
    fd = ::open(file.path_.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  } while (fd < 0 && errno == EINTR);
  if (fd < 0) return os_error("cannot open", path, errno);
  file.fd_ = fd;

  struct stat st {};
  if (::fstat(fd, &st) != 0) return os_error("cannot stat", path, errno);
  if (!S_ISREG(st.st_mode)) {
    return Status(Errc::io_error, std::string("'") + file.path_ + "' is not a regular file" +
                                      (S_ISDIR(st.st_mode) ? " (it is a folder)" : ""))
        .with_file(file.path_)
        .with_rule("file.not_regular")
        .with_hint("pass the path of a checkpoint file");
  }
  const int flags = ::fcntl(fd, F_GETFL);
  if (flags >= 0) (void)::fcntl(fd, F_SETFL, flags & ~O_NONBLOCK);
  file.size_ = static_cast<std::uint64_t>(st.st_size);
  return file;
}

Status ReadFile::read_at(void* dst, std::uint64_t size, std::uint64_t offset) const noexcept {
  return pread_exact(fd_, dst, size, offset, path_);
}

Status pread_exact(int fd, void* dst, std::uint64_t size, std::uint64_t offset,
                   std::string_view path) noexcept {
  auto* out = static_cast<unsigned char*>(dst);
  std::uint64_t done = 0;
  while (done < size) {
    const std::uint64_t pos = offset + done;
    if (pos < offset || pos > static_cast<std::uint64_t>(INT64_MAX)) {
      return Status(Errc::invalid_argument, "read offset is out of range")
          .with_file(std::string(path))
          .with_offset(offset)
          .with_rule("file.range");
    }
    const std::uint64_t want = std::min(size - done, kMaxChunk);
    const ssize_t got =
        ::pread(fd, out + done, static_cast<std::size_t>(want), static_cast<off_t>(pos));
    if (got < 0) {
      if (errno == EINTR) continue;
      Status status = os_error("cannot read", path, errno);
      return std::move(status.with_offset(pos));
    }
    if (got == 0) {
      return Status(Errc::format_error, "the file ends at byte " + std::to_string(pos) + " but " +
                                            std::to_string(size - done) +
                                            " more bytes were expected there")
          .with_file(std::string(path))
          .with_offset(pos)
          .with_rule("file.truncated")
          .with_hint("the file is truncated or was changed while open: re-download it");
    }
    done += static_cast<std::uint64_t>(got);
  }
  return Status::ok();
}

Result<std::string> read_small_file(std::string_view path, std::uint64_t max_bytes) noexcept {
  auto file = ReadFile::open(path);
  if (!file) return file.status();
  if (file->size() > max_bytes) {
    return Status(Errc::limit_exceeded, "the file is " + std::to_string(file->size()) +
                                            " bytes; at most " + std::to_string(max_bytes) +
                                            " are accepted")
        .with_file(std::string(path))
        .with_rule("file.too_large")
        .with_hint("this does not look like the expected JSON file");
  }
  std::string text(static_cast<std::size_t>(file->size()), '\0');
  DMEM_TRY(file->read_at(text.data(), text.size(), 0));
  return text;
}

// ---- TempFile ----------------------------------------------------------------------------------

TempFile::TempFile(TempFile&& other) noexcept
    : fd_(std::exchange(other.fd_, -1)),
      temp_path_(std::move(other.temp_path_)),
      final_path_(std::move(other.final_path_)) {
  other.temp_path_.clear();
}

TempFile& TempFile::operator=(TempFile&& other) noexcept {
  if (this != &other) {
    discard();
    fd_ = std::exchange(other.fd_, -1);
    temp_path_ = std::move(other.temp_path_);
    final_path_ = std::move(other.final_path_);
    other.temp_path_.clear();
  }
  return *this;
}

TempFile::~TempFile() {
  discard();
}

void TempFile::discard() noexcept {
  close_fd(fd_);
  fd_ = -1;
  if (!temp_path_.empty()) ::unlink(temp_path_.c_str());
  temp_path_.clear();
}

Result<TempFile> TempFile::create(std::string_view final_path) noexcept {
  static std::atomic<std::uint64_t> counter{0};
  if (final_path.empty()) {
    return Status(Errc::invalid_argument, "empty output path").with_rule("file.path");
  }
  TempFile file;
  file.final_path_ = std::string(final_path);
  for (int attempt = 0; attempt < 100; ++attempt) {
    std::string candidate = file.final_path_ + "." + std::to_string(::getpid()) + "." +
                            std::to_string(counter.fetch_add(1)) + ".tmp";
    const int fd = ::open(candidate.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
    if (fd >= 0) {
      file.fd_ = fd;
      file.temp_path_ = std::move(candidate);
      return file;
    }
    if (errno == EINTR || errno == EEXIST) continue;
    return os_error("cannot create a temporary file next to", final_path, errno);
  }
  return Status(Errc::io_error, "cannot find a free temporary file name")
      .with_file(std::string(final_path))
      .with_rule("file.io");
}

Status TempFile::write(const void* data, std::uint64_t size) noexcept {
  if (fd_ < 0) return Status(Errc::internal, "write to a closed temporary file");
  const auto* in = static_cast<const unsigned char*>(data);
  std::uint64_t done = 0;
  while (done < size) {
    const std::uint64_t want = std::min(size - done, kMaxChunk);
    const ssize_t put = ::write(fd_, in + done, static_cast<std::size_t>(want));
    if (put < 0) {
      if (errno == EINTR) continue;
      return os_error("cannot write", temp_path_, errno);
    }
    if (put == 0) return os_error("cannot write", temp_path_, ENOSPC);
    done += static_cast<std::uint64_t>(put);
  }
  return Status::ok();
}

Status TempFile::commit() noexcept {
  if (fd_ < 0) return Status(Errc::internal, "commit of a closed temporary file");
  // fsync before rename: after a crash the destination is either the old file or the whole new one.
  if (::fsync(fd_) != 0 && errno != EINVAL && errno != EROFS) {
    return os_error("cannot flush", temp_path_, errno);
  }
  const int fd = std::exchange(fd_, -1);
  if (::close(fd) != 0 && errno != EINTR) return os_error("cannot close", temp_path_, errno);
  if (::rename(temp_path_.c_str(), final_path_.c_str()) != 0) {
    return os_error("cannot rename the temporary file onto", final_path_, errno);
  }
  temp_path_.clear();  // nothing left to remove
  return Status::ok();
}

// ---- little endian -----------------------------------------------------------------------------

std::uint64_t load_le64(const unsigned char* p) noexcept {
  std::uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}

void store_le64(unsigned char* p, std::uint64_t v) noexcept {
  for (int i = 0; i < 8; ++i) p[i] = static_cast<unsigned char>(v >> (8 * i));
}

Status writer_input_error(std::string message, std::string_view path, const char* rule,
                          const std::string& tensor) {
  Status status(Errc::invalid_argument, std::move(message));
  status.with_file(std::string(path)).with_rule(rule);
  if (!tensor.empty()) status.with_tensor(tensor);
  return status;
}

}  // namespace dmem::detail
