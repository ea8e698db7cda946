// libFuzzer target: byte quantities ("24GiB", "512 MB", "4096"). An accepted quantity written
// with format_bytes must read back (format_bytes rounds, so only within its precision).
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "dmem/units.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  auto bytes = dmem::parse_bytes(text);
  if (!bytes) {
    (void)bytes.status().to_string();
    return 0;
  }
  const std::string shown = dmem::format_bytes(*bytes);
  if (shown.empty()) __builtin_trap();
  // Everything dmem prints reads back (near 2^64 the rounded figure may overflow).
  auto again = dmem::parse_bytes(shown);
  if (!again && *bytes < (1ull << 63)) __builtin_trap();
  return 0;
}
