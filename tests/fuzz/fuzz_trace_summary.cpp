// libFuzzer target: trace JSON read by `dmem report` (docs/runtime.md, "Traces"). Any input is a
// summary or one Status with a report.* rule; never a crash, a hang or an abort from a wrong type.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "runtime/trace_summary.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  auto s = dmem::detail::summarize_trace(text, "fuzz.json");
  if (!s) {
    const auto& rule = s.status().rule();
    if (rule != "report.json" && rule != "report.format") __builtin_trap();
    (void)s.status().to_string();
    return 0;
  }
  for (const auto& step : s->steps)
    if (step.overlap && (*step.overlap < 0 || *step.overlap > 1.0000001)) __builtin_trap();
  return 0;
}
