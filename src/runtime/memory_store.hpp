// One memory store's accounting: bytes in use against a budget, and the peak. Reservations are
// lock-free so the loader's threads, the copy worker and acquiring threads can share a store.
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
  [[nodiscard]] bool try_reserve(std::uint64_t bytes) noexcept;
  void release(std::uint64_t bytes) noexcept;

  [[nodiscard]] Store kind() const noexcept { return kind_; }
  [[nodiscard]] std::uint64_t budget() const noexcept { return budget_; }  ///< 0 = unlimited
  [[nodiscard]] std::uint64_t in_use() const noexcept { return in_use_.load(); }
  [[nodiscard]] std::uint64_t peak() const noexcept { return peak_.load(); }

 private:
  Store kind_;
  std::uint64_t budget_;
  Trace* trace_;
  std::atomic<std::uint64_t> in_use_{0};
  std::atomic<std::uint64_t> peak_{0};
};

}  // namespace dmem::detail
