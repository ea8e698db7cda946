// The progress bar long-running commands (run's load, convert) draw on stderr.
#pragma once

#include <cstdint>

namespace dmem::cli {

/// Draws "LABEL [####....] 42.0%  1.2 GiB/s  ETA 3 s" on stderr when it is a terminal, once the
/// work has taken over a second; ends the line when done reaches total.
class ProgressBar {
 public:
  explicit ProgressBar(const char* label) noexcept : label_(label) {}
  void update(std::uint64_t done, std::uint64_t total, double seconds, double bytes_per_second,
              double eta_seconds);

 private:
  const char* label_;
  bool drawn_ = false;
};

}  // namespace dmem::cli
