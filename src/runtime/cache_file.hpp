// The disk tier's cache file: transformed weights (cast or quantized) whose home is disk. With a
// cache folder given (SessionOptions::cache_dir) the file persists and the next session that
// would write the same bytes reads it instead of transforming the checkpoint again; without one
// it is a temporary removed at close. The name carries a key over everything the bytes depend
// on, and a trailer repeats it, so a changed checkpoint, strategy or plugin never reuses a file.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "dmem/model.hpp"
#include "runtime/residency_layout.hpp"

namespace dmem::detail {

/// Bytes after the data: magic, format version, key, data size.
inline constexpr std::uint64_t kCacheTrailerBytes = 32;

/// A 64-bit key over the cache's contents' inputs: dmem's cache format, each cached tensor's
/// name, source dtype, shape, place in its file and stored form, the files' identity (path,
/// size, modification time), the component's storage and its quantizer's plugin version
/// (`plugin_versions[i]` for layout component i; empty when none).
[[nodiscard]] std::uint64_t cache_key(const Model& model, const ResidencyLayout& layout,
                                      const std::vector<std::string>& plugin_versions) noexcept;

/// "<folder>/dmem-cache-<16 hex digits>.bin".
[[nodiscard]] std::string cache_path(const std::string& folder, std::uint64_t key);

/// The trailer written after `data_bytes` bytes of data.
[[nodiscard]] std::string cache_trailer(std::uint64_t key, std::uint64_t data_bytes);

/// Whether the file at `path` is a complete cache for `key` with `data_bytes` of data: its size
/// and trailer match. A missing, short or foreign file is simply not reusable.
[[nodiscard]] bool cache_reusable(const std::string& path, std::uint64_t key,
                                  std::uint64_t data_bytes) noexcept;

}  // namespace dmem::detail
