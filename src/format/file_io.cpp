#include "format/file_io.hpp"

#include <fcntl.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>
#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdint>
#include <ctime>
#include <limits>
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
  if (err == ELOOP) status.with_hint("a symbolic link on the path loops (or points to itself)");
  if (err == ENAMETOOLONG) status.with_hint("the path or one of its names is too long");
  if (err == ENOTDIR) status.with_hint("a part of the path that should be a folder is a file");
  if (err == EISDIR) status.with_hint("pass the path of a file, not of a folder");
  return status;
}

namespace {
// What a path that is not a regular file is, for messages ("a FIFO (named pipe)").
const char* file_kind(unsigned mode) noexcept {
  return S_ISDIR(mode)    ? "a folder"
         : S_ISFIFO(mode) ? "a FIFO (named pipe)"
         : S_ISCHR(mode)  ? "a character device"
         : S_ISBLK(mode)  ? "a block device"
         : S_ISSOCK(mode) ? "a socket"
                          : "not a regular file";
}
}  // namespace

Status not_regular_error(std::string_view path, unsigned mode) noexcept {
  const bool dir = S_ISDIR(mode);
  const char* kind = file_kind(mode);
  // Appended piece by piece: GCC 12 at -O3 reports a false -Wrestrict on chains of string
  // temporaries (GCC PR 105651).
  std::string message = "'";
  message.append(path).append("' is ").append(kind);
  if (!dir) message += ", not a regular file";
  return Status(Errc::io_error, std::move(message))
      .with_file(std::string(path))
      .with_rule("file.not_regular")
      .with_hint(dir ? "pass the path of a file inside the folder"
                     : "dmem reads only regular files: copy the data to a file first");
}

bool path_present(const std::string& path) noexcept {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 || errno != ENOENT;
}

// ---- ReadFile ----------------------------------------------------------------------------------

ReadFile::ReadFile(ReadFile&& other) noexcept
    : fd_(std::exchange(other.fd_, -1)),
      size_(other.size_),
      dev_(other.dev_),
      ino_(other.ino_),
      path_(std::move(other.path_)) {}

ReadFile& ReadFile::operator=(ReadFile&& other) noexcept {
  if (this != &other) {
    close_fd(fd_);
    fd_ = std::exchange(other.fd_, -1);
    size_ = other.size_;
    dev_ = other.dev_;
    ino_ = other.ino_;
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
  // The OS would read the path only up to a NUL: refuse instead of opening another file.
  if (file.path_.find('\0') != std::string::npos) {
    return Status(Errc::invalid_argument, "the path contains a NUL byte")
        .with_file(file.path_)
        .with_rule("file.path")
        .with_hint("pass a path without NUL bytes");
  }
  // O_NONBLOCK keeps open() from hanging on a FIFO; it is cleared once we know the file is regular.
  int fd;
  do {
    fd = ::open(file.path_.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  } while (fd < 0 && errno == EINTR);
  if (fd < 0) return os_error("cannot open", path, errno);
  file.fd_ = fd;

  struct stat st {};
  if (::fstat(fd, &st) != 0) return os_error("cannot stat", path, errno);
  if (!S_ISREG(st.st_mode)) return not_regular_error(file.path_, st.st_mode);
  const int flags = ::fcntl(fd, F_GETFL);
  if (flags >= 0) (void)::fcntl(fd, F_SETFL, flags & ~O_NONBLOCK);
  file.size_ = static_cast<std::uint64_t>(st.st_size);
  file.dev_ = static_cast<std::uint64_t>(st.st_dev);
  file.ino_ = static_cast<std::uint64_t>(st.st_ino);
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
  // ReadFile refuses FIFOs, devices and folders before a byte is read, so /dev/zero cannot fill
  // memory and a FIFO cannot hang; the size is checked before allocating.
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

namespace {

// The destination's folder ("." for a bare name) and its last component.
void split_path(const std::string& path, std::string& dir, std::string& base) {
  const std::size_t slash = path.find_last_of('/');
  // assign(count, char) rather than = "x": GCC 12 at -O3 reports a false -Wrestrict inside
  // libstdc++ for a short literal assigned to a string (GCC PR 105651).
  if (slash == std::string::npos) {
    dir.assign(1, '.');
    base = path;
  } else {
    if (slash == 0)
      dir.assign(1, '/');
    else
      dir.assign(path, 0, slash);
    base.assign(path, slash + 1, std::string::npos);
  }
}

// Unpredictable temp-name suffix: a planted file or link cannot guess the name in advance.
std::string random_suffix() {
  std::uint64_t r = 0;
  if (::getrandom(&r, sizeof r, GRND_NONBLOCK) != static_cast<ssize_t>(sizeof r)) {
    static std::atomic<std::uint64_t> counter{0};
    r = (static_cast<std::uint64_t>(::getpid()) << 32) ^ counter.fetch_add(1) ^
        static_cast<std::uint64_t>(::time(nullptr)) * 0x9E3779B97F4A7C15ull;
  }
  static constexpr char kDigits[] = "0123456789abcdefghijklmnopqrstuv";
  std::string s;
  for (int i = 0; i < 12; ++i, r >>= 5) s += kDigits[r & 31];
  return s;
}

}  // namespace

Status check_write_target(std::string_view path) noexcept {
  const std::string p(path);
  if (p.empty()) {
    return Status(Errc::invalid_argument, "empty output path")
        .with_rule("file.write_target")
        .with_hint("pass the path of the file to write");
  }
  if (p.find('\0') != std::string::npos) {
    return Status(Errc::invalid_argument, "the output path contains a NUL byte")
        .with_file(p)
        .with_rule("file.path")
        .with_hint("pass a path without NUL bytes");
  }
  if (p.back() == '/') {
    return Status(Errc::invalid_argument, "'" + p + "' names a folder, not a file")
        .with_file(p)
        .with_rule("file.write_target")
        .with_hint("pass the path of a file inside the folder");
  }
  // A link at the destination is replaced by the rename, never written through; what it points
  // to must still be a file, so `--svg link-to-/dev/null` is refused like `--svg /dev/null`.
  struct stat st {};
  if (::stat(p.c_str(), &st) != 0) {
    if (errno == ENOENT) {
      struct stat lst {};
      if (::lstat(p.c_str(), &lst) == 0) return Status::ok();  // dangling link: replaced
      std::string dir, base;
      split_path(p, dir, base);
      struct stat dst {};
      if (::stat(dir.c_str(), &dst) != 0)
        return os_error("cannot write into the folder of", p, errno);
      if (!S_ISDIR(dst.st_mode)) return os_error("cannot write", p, ENOTDIR);
      return Status::ok();
    }
    return os_error("cannot write", p, errno);
  }
  if (S_ISREG(st.st_mode)) return Status::ok();
  std::string message = "'";
  message.append(p).append("' is ").append(file_kind(st.st_mode));
  message += "; dmem writes only regular files (it replaces them)";
  return Status(Errc::invalid_argument, std::move(message))
      .with_file(p)
      .with_rule("file.write_target")
      .with_hint("pass the path of a regular file, or of one that does not exist yet");
}

Result<TempFile> TempFile::create(std::string_view final_path) noexcept {
  DMEM_TRY(check_write_target(final_path));
  TempFile file;
  file.final_path_ = std::string(final_path);
  std::string dir, base;
  split_path(file.final_path_, dir, base);
  // A long name plus the prefix and suffix could pass NAME_MAX (255) where the name itself fits.
  if (base.size() > 200) base.resize(200);
  // "<dir>/.<name>.<random>.tmp": hidden, in the destination's folder (rename stays on one file
  // system), created with O_EXCL|O_NOFOLLOW so nothing planted there can redirect the write.
  const std::string prefix = (dir == "." && file.final_path_.find('/') == std::string::npos
                                  ? std::string()
                                  : (dir == "/" ? dir : dir + "/")) +
                             "." + base + ".";
  for (int attempt = 0; attempt < 100; ++attempt) {
    std::string candidate = prefix + random_suffix() + ".tmp";
    const int fd =
        ::open(candidate.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0666);
    if (fd >= 0) {
      file.fd_ = fd;
      file.temp_path_ = std::move(candidate);
      // A replaced file keeps its permission bits (a private 0600 file stays private).
      struct stat old {};
      if (::stat(file.final_path_.c_str(), &old) == 0 && S_ISREG(old.st_mode))
        (void)::fchmod(fd, old.st_mode & 0777);  // never set-id bits
      return file;
    }
    if (errno == EINTR || errno == EEXIST) continue;
    Status status = os_error("cannot create a temporary file next to", final_path, errno);
    return std::move(status.with_rule("file.write"));
  }
  return Status(Errc::io_error, "cannot find a free temporary file name")
      .with_file(std::string(final_path))
      .with_rule("file.write");
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
      return write_failed(errno);
    }
    if (put == 0) return write_failed(ENOSPC);
    done += static_cast<std::uint64_t>(put);
  }
  return Status::ok();
}

Status TempFile::write_at(std::uint64_t offset, const void* data, std::uint64_t size) noexcept {
  if (fd_ < 0) return Status(Errc::internal, "write to a closed temporary file");
  const auto* in = static_cast<const unsigned char*>(data);
  std::uint64_t done = 0;
  while (done < size) {
    const std::uint64_t want = std::min(size - done, kMaxChunk);
    if (offset + done > static_cast<std::uint64_t>(std::numeric_limits<off_t>::max()))
      return write_failed(EFBIG);
    const ssize_t put =
        ::pwrite(fd_, in + done, static_cast<std::size_t>(want), static_cast<off_t>(offset + done));
    if (put < 0) {
      if (errno == EINTR) continue;
      return write_failed(errno);
    }
    if (put == 0) return write_failed(ENOSPC);
    done += static_cast<std::uint64_t>(put);
  }
  return Status::ok();
}

Status TempFile::allocate(std::uint64_t size) noexcept {
  if (fd_ < 0) return Status(Errc::internal, "allocate on a closed temporary file");
  if (size == 0) return Status::ok();
  if (size > static_cast<std::uint64_t>(std::numeric_limits<off_t>::max()))
    return write_failed(EFBIG);
  int err = 0;
  do {
    err = ::posix_fallocate(fd_, 0, static_cast<off_t>(size));
  } while (err == EINTR);
  if (err == 0) return Status::ok();
  // Some file systems cannot preallocate: the file still gets its size (a GGUF file may end in
  // padding nobody writes) and the writes find a full disk themselves.
  if (err == EOPNOTSUPP || err == EINVAL) {
    if (::ftruncate(fd_, static_cast<off_t>(size)) == 0) return Status::ok();
    err = errno;
  }
  return write_failed(err);
}

Status TempFile::write_failed(int err) noexcept {
  // Name the destination (the temp file is about to vanish) and say the old file is intact.
  Status status = os_error("cannot write", final_path_, err);
  status.with_rule("file.write");
  status.with_hint(err == ENOSPC || err == EFBIG || err == EDQUOT
                       ? "free disk space (or raise the file size limit) and retry; the existing "
                         "file, if any, is unchanged"
                       : "the existing file, if any, is unchanged");
  discard();
  return status;
}

Status TempFile::commit() noexcept {
  if (fd_ < 0) return Status(Errc::internal, "commit of a closed temporary file");
  // fsync before rename: after a crash the destination is either the old file or the whole new one.
  if (::fsync(fd_) != 0 && errno != EINVAL && errno != EROFS) return write_failed(errno);
  const int fd = std::exchange(fd_, -1);
  if (::close(fd) != 0 && errno != EINTR) return write_failed(errno);
  // Checked again right before the rename: the target may have changed since create().
  if (Status s = check_write_target(final_path_); !s.is_ok()) {
    discard();
    return s;
  }
  if (::rename(temp_path_.c_str(), final_path_.c_str()) != 0) {
    Status status = os_error("cannot rename the temporary file onto", final_path_, errno);
    discard();
    return std::move(status.with_rule("file.write"));
  }
  temp_path_.clear();  // nothing left to remove
  // Make the rename itself durable; a folder that cannot be synced is not an error.
  std::string dir, base;
  split_path(final_path_, dir, base);
  const int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    (void)::fsync(dfd);
    ::close(dfd);
  }
  return Status::ok();
}

Status write_file_atomic(std::string_view path, std::string_view bytes) noexcept {
  auto file = TempFile::create(path);
  if (!file) return file.status();
  DMEM_TRY(file->write(bytes.data(), bytes.size()));
  return file->commit();  // an uncommitted TempFile removes itself
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
