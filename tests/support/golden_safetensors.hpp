// Reads a small golden .safetensors file whole (header JSON + data): tensors by name and the
// __metadata__ strings. For committed test files only; the SDK's reader is src/format.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace dmem::test {

struct GoldenTensor {
  std::string dtype;  // "F32", "BF16", "U8", ...
  std::vector<std::uint64_t> shape;
  std::vector<std::uint8_t> bytes;
};

struct GoldenFile {
  std::map<std::string, GoldenTensor> tensors;
  std::map<std::string, std::string> metadata;
  [[nodiscard]] const GoldenTensor& at(const std::string& name) const;
  [[nodiscard]] bool has(const std::string& name) const { return tensors.count(name) != 0; }
};

/// Fails the running test (REQUIRE) when the file is missing or malformed.
GoldenFile read_golden_safetensors(const std::string& path);

}  // namespace dmem::test
