// Host RAM the loader may still take: the host's probe, or MemAvailable capped by this process's
// cgroup limits, read again as a load goes so that a container limit lowered (or another program
// growing) mid-load shrinks the staging window instead of failing the load or overrunning it.
#include "hw/hw_detail.hpp"
#include "runtime/session_impl.hpp"

namespace dmem {
inline namespace v1 {

std::uint64_t Session::Impl::host_room() const noexcept {
  if (options.host_memory_probe) return options.host_memory_probe();
  const auto ram = detail::read_ram(detail::SystemPaths{});
  return ram ? ram->available : UINT64_MAX;
}

bool Session::Impl::may_stage(std::uint32_t thread, std::uint64_t buffer) noexcept {
  if (thread == 0 || buffer == 0) return true;  // the window never drops below one buffer
  const std::uint64_t room = host_room();
  if (room == UINT64_MAX) return true;
  // Our own buffers count as room (what is staged now could be staged again); thread k stages
  // when the window holds k + 1 buffers, so the lower threads go first.
  const std::uint64_t in_use = staging_in_use.load();
  const std::uint64_t window = room > UINT64_MAX - in_use ? UINT64_MAX : room + in_use;
  return window / buffer > thread;
}

}  // namespace v1
}  // namespace dmem
