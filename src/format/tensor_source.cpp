// TensorSource: pread of tensor bytes from already-validated checkpoint files. Reads are const
// and thread-safe (pread has no shared file position).
#include "dmem/tensor_source.hpp"

#include <cstdint>
#include <utility>
#include <vector>

#include "format/direct_read.hpp"
#include "format/file_io.hpp"

namespace dmem {
inline namespace v1 {

struct TensorSource::Impl {
  std::vector<detail::ReadFile> files;
  std::vector<detail::DirectFile> direct;  // empty, or one per file (closed: buffered)
  /// The file of `tensor` after the range checks read() documents.
  Result<const detail::ReadFile*> check(const TensorInfo& tensor, const void* dst,
                                        std::uint64_t begin, std::uint64_t size) const noexcept;
};

TensorSource::TensorSource(std::unique_ptr<Impl> impl) noexcept : impl_(std::move(impl)) {}
TensorSource::TensorSource(TensorSource&&) noexcept = default;
TensorSource& TensorSource::operator=(TensorSource&&) noexcept = default;
TensorSource::~TensorSource() = default;

Result<TensorSource> TensorSource::open(const std::vector<std::string>& files) noexcept {
  auto impl = std::make_unique<Impl>();
  impl->files.reserve(files.size());
  for (const std::string& path : files) {
    auto file = detail::ReadFile::open(path);
    if (!file) return file.status();
    impl->files.push_back(std::move(file.value()));
  }
  return TensorSource(std::move(impl));
}

Result<TensorSource> TensorSource::open(const Component& component) noexcept {
  auto source = open(component.files);
  if (!source) {
    Status status = source.status();
    return Status(status.code(), "component '" + component.name + "': " + status.message())
        .with_file(status.file())
        .with_rule(status.rule())
        .with_hint(status.hint());
  }
  return source;
}

Result<const detail::ReadFile*> TensorSource::Impl::check(const TensorInfo& tensor, const void* dst,
                                                          std::uint64_t begin,
                                                          std::uint64_t size) const noexcept {
  if (tensor.file == kNoFile || tensor.file >= files.size()) {
    return Status(Errc::invalid_argument,
                  tensor.file == kNoFile
                      ? std::string("the tensor lives in no file (a catalog tensor has no data)")
                      : "the tensor's file index " + std::to_string(tensor.file) +
                            " is not one of the " + std::to_string(files.size()) +
                            " files of this source")
        .with_tensor(tensor.name)
        .with_rule("tensor_source.file");
  }
  const detail::ReadFile& file = files[tensor.file];
  if (begin > tensor.nbytes || size > tensor.nbytes - begin) {
    return Status(Errc::invalid_argument, "bytes [" + std::to_string(begin) + ", " +
                                              std::to_string(begin) + "+" + std::to_string(size) +
                                              ") are past the tensor's end at " +
                                              std::to_string(tensor.nbytes))
        .with_file(file.path())
        .with_tensor(tensor.name)
        .with_rule("tensor_source.range");
  }
  if (size != 0 && dst == nullptr) {
    return Status(Errc::invalid_argument, "destination buffer is null")
        .with_file(file.path())
        .with_tensor(tensor.name)
        .with_rule("tensor_source.range");
  }
  if (tensor.offset > UINT64_MAX - begin) {
    return Status(Errc::invalid_argument, "the tensor's offset overflows")
        .with_file(file.path())
        .with_tensor(tensor.name)
        .with_rule("tensor_source.range");
  }
  return &file;
}

Status TensorSource::read(const TensorInfo& tensor, void* dst, std::uint64_t begin,
                          std::uint64_t size) const noexcept {
  if (!impl_) return Status(Errc::invalid_argument, "read from a moved-from TensorSource");
  auto file = impl_->check(tensor, dst, begin, size);
  if (!file) return file.status();
  if (size == 0) return Status::ok();
  Status status = file.value()->read_at(dst, size, tensor.offset + begin);
  if (!status.is_ok()) status.with_tensor(tensor.name);
  return status;
}

bool TensorSource::enable_direct_io() noexcept {
  if (!impl_) return false;
  if (!impl_->direct.empty()) return true;
  bool all = true;
  impl_->direct.reserve(impl_->files.size());
  for (const detail::ReadFile& file : impl_->files) {
    auto direct = detail::DirectFile::open(file);
    all = all && direct.is_ok();
    impl_->direct.push_back(direct ? std::move(direct.value()) : detail::DirectFile());
  }
  return all;
}

Result<const unsigned char*> TensorSource::read_aligned(const TensorInfo& tensor,
                                                        unsigned char* buf, std::uint64_t cap,
                                                        std::uint64_t begin,
                                                        std::uint64_t size) const noexcept {
  if (!impl_) return Status(Errc::invalid_argument, "read from a moved-from TensorSource");
  auto file = impl_->check(tensor, buf, begin, size);
  if (!file) return file.status();
  if (size == 0) return static_cast<const unsigned char*>(buf);
  if (size > cap) {
    return Status(Errc::invalid_argument, "the buffer is smaller than the bytes to read")
        .with_file(file.value()->path())
        .with_tensor(tensor.name)
        .with_rule("tensor_source.range");
  }
  Result<const unsigned char*> out = static_cast<const unsigned char*>(buf);
  if (!impl_->direct.empty() && impl_->direct[tensor.file].is_open()) {
    out = impl_->direct[tensor.file].read(buf, cap, size, tensor.offset + begin);
  } else {
    Status status = file.value()->read_at(buf, size, tensor.offset + begin);
    if (!status.is_ok()) out = std::move(status);
  }
  if (!out) {
    Status status = out.status();
    return std::move(status.with_tensor(tensor.name));
  }
  return out;
}

}  // namespace v1
}  // namespace dmem
