// Checkpoint readers: safetensors (single and sharded) and GGUF, headers only.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "dmem/status.hpp"
#include "dmem/tensor.hpp"

namespace dmem {
inline namespace v1 {

// ---- safetensors -------------------------------------------------------------------------------

/// Largest header the reference reader accepts (100,000,000 bytes).
inline constexpr std::uint64_t kSafetensorsMaxHeader = 100'000'000;

struct SafetensorsFile {
  std::string path;
  std::uint64_t file_size = 0;
  std::uint64_t header_size = 0;    ///< N, the JSON length
  std::uint64_t data_start = 0;     ///< 8 + N
  std::vector<TensorInfo> tensors;  ///< sorted by offset; `file` = 0, `offset` absolute
  std::vector<std::pair<std::string, std::string>> metadata;  ///< `__metadata__`, sorted by key
};

/// Reads and validates the header of one .safetensors file (all rules of the reference reader:
/// header bound, UTF-8, JSON shape, unique names, contiguous sorted offsets from 0, checked
/// shape x dtype arithmetic, exact coverage of the file).
[[nodiscard]] Result<SafetensorsFile> read_safetensors(std::string_view path) noexcept;

/// Same validation on bytes in memory: `bytes` must hold at least the 8-byte prefix and the
/// header; `file_size` is the size of the whole file (checked for exact coverage). `label`
/// names the input in errors.
[[nodiscard]] Result<SafetensorsFile> parse_safetensors(const void* bytes, std::size_t size,
                                                        std::uint64_t file_size,
                                                        std::string_view label) noexcept;

struct ShardedCheckpoint {
  std::string index_path;
  std::vector<std::string> files;   ///< shard paths in index order
  std::vector<TensorInfo> tensors;  ///< `file` indexes `files`
  std::uint64_t total_size = 0;     ///< metadata.total_size when present, else the sum
  std::vector<std::pair<std::string, std::string>> metadata;  ///< merged `__metadata__`
};

/// Reads `*.safetensors.index.json`: every shard exists and parses, every tensor is in exactly
/// one shard and the index agrees with the shards, `total_size` matches the tensor bytes.
[[nodiscard]] Result<ShardedCheckpoint> read_sharded(std::string_view index_path) noexcept;

// ---- GGUF --------------------------------------------------------------------------------------

enum class GgufType : std::uint32_t {
  u8 = 0,
  i8 = 1,
  u16 = 2,
  i16 = 3,
  u32 = 4,
  i32 = 5,
  f32 = 6,
  boolean = 7,
  string = 8,
  array = 9,
  u64 = 10,
  i64 = 11,
  f64 = 12,
};

/// One metadata value. Arrays hold their element type and values of that type.
struct GgufValue {
  GgufType type = GgufType::u8;
  GgufType elem_type = GgufType::u8;  ///< arrays only
  std::variant<std::uint64_t, std::int64_t, double, bool, std::string, std::vector<std::uint64_t>,
               std::vector<std::int64_t>, std::vector<double>, std::vector<bool>,
               std::vector<std::string>>
      value;
};

struct GgufKv {
  std::string key;
  GgufValue value;
};

struct GgufFile {
  std::string path;
  std::uint32_t version = 3;
  std::uint64_t file_size = 0;
  std::uint32_t alignment = 32;
  std::uint64_t data_start = 0;  ///< absolute offset of the tensor data section
  std::vector<GgufKv> metadata;
  std::vector<TensorInfo> tensors;  ///< in info order; shape in PyTorch order; `offset` absolute

  [[nodiscard]] const GgufValue* find(std::string_view key) const noexcept;
};

/// Largest string or array the reader accepts (as ggml: 1 GiB / 1 Gi elements), further bounded
/// by the bytes left in the file.
inline constexpr std::uint64_t kGgufMaxString = 1ull << 30;
inline constexpr std::uint64_t kGgufMaxArray = 1ull << 30;

/// Reads and validates a GGUF v2/v3 header and tensor table (FORMATS.md §2.4 and §2.7).
[[nodiscard]] Result<GgufFile> read_gguf(std::string_view path) noexcept;
/// Same validation on a whole file held in memory.
[[nodiscard]] Result<GgufFile> parse_gguf(const void* bytes, std::size_t size,
                                          std::string_view label) noexcept;

}  // namespace v1
}  // namespace dmem
