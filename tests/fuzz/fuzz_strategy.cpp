// libFuzzer target: strategy JSON (docs/strategy.md). An accepted strategy must write back in
// canonical form and read back to the same canonical text.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "dmem/strategy.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  auto st = dmem::strategy_from_json(text);
  if (!st) {
    (void)st.status().to_string();
    return 0;
  }
  const std::string canonical = dmem::strategy_to_json(*st, -1);
  auto again = dmem::strategy_from_json(canonical);
  if (!again || dmem::strategy_to_json(*again, -1) != canonical) __builtin_trap();
  (void)dmem::strategy_summary(*st);
  return 0;
}
