#include "cli/progress_bar.hpp"

#include <unistd.h>

#include <cstdio>
#include <string>

#include "dmem/units.hpp"

namespace dmem::cli {

void ProgressBar::update(std::uint64_t done, std::uint64_t total, double seconds,
                         double bytes_per_second, double eta_seconds) {
  if (!::isatty(2) || (seconds < 1.0 && !drawn_)) return;
  drawn_ = true;
  const double frac = total == 0 ? 1.0 : static_cast<double>(done) / static_cast<double>(total);
  const int width = 30;
  const int filled = static_cast<int>(frac * width);
  std::string bar(static_cast<std::size_t>(filled), '#');
  bar.append(static_cast<std::size_t>(width - filled), '.');
  std::fprintf(stderr, "\r%s [%s] %5.1f%%  %s/s  ETA %.0f s ", label_, bar.c_str(), frac * 100.0,
               format_bytes(static_cast<std::uint64_t>(bytes_per_second)).c_str(), eta_seconds);
  if (done >= total) std::fprintf(stderr, "\n");
}

}  // namespace dmem::cli
