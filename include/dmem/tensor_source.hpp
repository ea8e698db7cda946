// TensorSource: reads a tensor's bytes (or a range of them) into a caller buffer with pread.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "dmem/model.hpp"
#include "dmem/status.hpp"

namespace dmem {
inline namespace v1 {

class TensorSource {
 public:
  /// Opens every file of `component` read-only; fails naming the file that cannot be opened.
  [[nodiscard]] static Result<TensorSource> open(const Component& component) noexcept;
  /// Opens an explicit list of files (TensorInfo::file indexes it).
  [[nodiscard]] static Result<TensorSource> open(const std::vector<std::string>& files) noexcept;

  TensorSource(TensorSource&&) noexcept;
  TensorSource& operator=(TensorSource&&) noexcept;
  ~TensorSource();

  /// Copies bytes [begin, begin + size) of `tensor` into `dst`. Short reads are retried; reading
  /// past the tensor's end or a file that ends early is an error naming file and tensor.
  [[nodiscard]] Status read(const TensorInfo& tensor, void* dst, std::uint64_t begin,
                            std::uint64_t size) const noexcept;
  /// Whole tensor.
  [[nodiscard]] Status read(const TensorInfo& tensor, void* dst) const noexcept {
    return read(tensor, dst, 0, tensor.nbytes);
  }

  /// Slack a read_aligned() buffer needs beyond the bytes read.
  static constexpr std::uint64_t kDirectSlack = 8192;
  /// Opens a second descriptor of every file that bypasses the page cache (O_DIRECT), which
  /// read_aligned() then uses: a checkpoint larger than RAM loads without evicting other
  /// programs' cached files. False when a file system refuses (those reads stay buffered).
  [[nodiscard]] bool enable_direct_io() noexcept;
  /// Like read(), into `buf` (4096-aligned, at least size + kDirectSlack bytes: `cap`), and
  /// returns where the bytes start inside it (`buf` itself for a buffered read).
  [[nodiscard]] Result<const unsigned char*> read_aligned(const TensorInfo& tensor,
                                                          unsigned char* buf, std::uint64_t cap,
                                                          std::uint64_t begin,
                                                          std::uint64_t size) const noexcept;

 private:
  struct Impl;
  explicit TensorSource(std::unique_ptr<Impl> impl) noexcept;
  std::unique_ptr<Impl> impl_;
};

}  // namespace v1
}  // namespace dmem
