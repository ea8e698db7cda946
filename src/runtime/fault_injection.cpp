#include "runtime/fault_injection.hpp"

#include <array>
#include <atomic>
#include <cstddef>

namespace dmem::detail {
namespace {

constexpr std::size_t kSites = static_cast<std::size_t>(FaultSite::count_);
std::array<std::atomic<std::uint64_t>, kSites> g_target{};
std::array<std::atomic<std::uint64_t>, kSites> g_calls{};
std::atomic<bool> g_armed{false};

}  // namespace

void fault_arm(FaultSite site, std::uint64_t nth) noexcept {
  const auto i = static_cast<std::size_t>(site);
  g_calls[i].store(0);
  g_target[i].store(nth);
  g_armed.store(true);
}

void fault_reset() noexcept {
  for (std::size_t i = 0; i < kSites; ++i) {
    g_target[i].store(0);
    g_calls[i].store(0);
  }
  g_armed.store(false);
}

std::uint64_t fault_calls(FaultSite site) noexcept {
  return g_calls[static_cast<std::size_t>(site)].load();
}

bool fault_hit(FaultSite site) noexcept {
  if (!g_armed.load(std::memory_order_relaxed)) return false;
  const auto i = static_cast<std::size_t>(site);
  const std::uint64_t n = g_calls[i].fetch_add(1) + 1;
  const std::uint64_t target = g_target[i].load();
  return target != 0 && n == target;
}

}  // namespace dmem::detail
