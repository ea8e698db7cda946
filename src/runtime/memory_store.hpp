// One memory store's accounting: bytes in use against a budget, and the peak. Reservations are
// lock-free so the loader's threads, the copy worker and acquiring threads can share a store; the
// budget may change at any time (Session::set_budget).
#pragma once

#include <atomic>
#include <cstdint>

#include "runtime/trace.hpp"

namespace dmem::detail {

class MemoryStore {
 public:
  MemoryStore(Store kind, std::uint64_t budget, Trace* trace) noexcept
      : kind_(kind), budget_(budget), trace_(trace) {}
  MemoryStore(const MemoryStore&) = delete;
  MemoryStore& operator=(const MemoryStore&) = delete;

  /// Takes `bytes` from the budget; false (nothing taken) when it would be exceeded.
  [[nodiscard]] bool try_reserve(std::uint64_t bytes) noexcept {
    return try_reserve_within(bytes, limit());
  }
  /// The same against `limit` instead of the budget (headroom mode's lower limit).
  [[nodiscard]] bool try_reserve_within(std::uint64_t bytes, std::uint64_t limit) noexcept;
  void release(std::uint64_t bytes) noexcept;

  [[nodiscard]] Store kind() const noexcept { return kind_; }
  [[nodiscard]] std::uint64_t budget() const noexcept { return budget_.load(); }  ///< 0 = unlimited
  /// The budget as a limit: unlimited is the largest value.
  [[nodiscard]] std::uint64_t limit() const noexcept {
    const std::uint64_t b = budget_.load();
    return b == 0 ? UINT64_MAX : b;
  }
  void set_budget(std::uint64_t bytes) noexcept { budget_.store(bytes); }
  [[nodiscard]] std::uint64_t in_use() const noexcept { return in_use_.load(); }
  [[nodiscard]] std::uint64_t peak() const noexcept { return peak_.load(); }

 private:
  Store kind_;
  std::atomic<std::uint64_t> budget_;
  Trace* trace_;
  std::atomic<std::uint64_t> in_use_{0};
  std::atomic<std::uint64_t> peak_{0};
};

}  // namespace dmem::detail
