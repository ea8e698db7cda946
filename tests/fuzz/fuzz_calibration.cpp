// libFuzzer target: calibration JSON (docs/hardware.md) applied to a two-GPU machine. A refused
// file must leave the machine untouched; an accepted one sets only positive finite figures.
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "dmem/hardware.hpp"
#include "hw/hw_detail.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  dmem::Hardware hw;
  hw.gpus.resize(2);
  hw.gpus[0].h2d_pinned_gbps = 25;
  hw.gpus[1].h2d_pinned_gbps = 25;
  hw.disk_read_gbps = 3;
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  const dmem::Status s = dmem::detail::apply_calibration_text(hw, text, "fuzz.json");
  if (!s) {
    (void)s.to_string();
    if (hw.gpus[0].h2d_pinned_gbps != 25 || hw.disk_read_gbps != 3) __builtin_trap();
    return 0;
  }
  for (const auto& g : hw.gpus)
    if (!(std::isfinite(g.h2d_pinned_gbps) && g.h2d_pinned_gbps > 0)) __builtin_trap();
  if (!(std::isfinite(hw.disk_read_gbps) && hw.disk_read_gbps > 0)) __builtin_trap();
  return 0;
}
