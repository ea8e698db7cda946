// Fault injection for tests: makes the N-th allocation or read at a site fail, so a test can walk
// every failure point of load and acquire and check that nothing leaks and the session stays
// usable or closes cleanly. Process-wide; disarmed (one relaxed atomic load per site) by default.
#pragma once

#include <cstdint>

namespace dmem::detail {

enum class FaultSite : std::uint8_t {
  device_alloc,  ///< compute-device memory
  pinned_alloc,  ///< the pinned arena
  host_alloc,    ///< pageable RAM and staging buffers
  read,          ///< a checkpoint or cache read fails
  short_read,    ///< a read comes back short (the file ended)
  count_
};

/// From now on the `nth` call (1-based) at `site` fails; 0 disarms the site. Resets its count.
void fault_arm(FaultSite site, std::uint64_t nth) noexcept;
/// Disarms every site and resets the counts.
void fault_reset() noexcept;
/// Calls counted at `site` since it was last armed or reset (to size a walk).
[[nodiscard]] std::uint64_t fault_calls(FaultSite site) noexcept;
/// Called by each site: true when this call must fail.
[[nodiscard]] bool fault_hit(FaultSite site) noexcept;

}  // namespace dmem::detail
