// Timing helpers shared by the CPU conversion benches: the best of several samples, each long
// enough (repeating the work) that cache-resident sizes are measured too.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstddef>

namespace dmem::bench {

/// Seconds for one call of `f`: the best of `samples` samples of at least `min_s` seconds each.
template <class F>
double seconds_per_call(F&& f, int samples = 5, double min_s = 0.02) {
  using Clock = std::chrono::steady_clock;
  f();  // warm caches and page in the buffers
  std::size_t reps = 1;
  for (;;) {
    const auto t0 = Clock::now();
    for (std::size_t r = 0; r < reps; ++r) f();
    if (std::chrono::duration<double>(Clock::now() - t0).count() >= min_s) break;
    reps *= 2;
  }
  double best = 1e30;
  for (int s = 0; s < samples; ++s) {
    const auto t0 = Clock::now();
    for (std::size_t r = 0; r < reps; ++r) f();
    best = std::min(
        best, std::chrono::duration<double>(Clock::now() - t0).count() / static_cast<double>(reps));
  }
  return best;
}

}  // namespace dmem::bench
