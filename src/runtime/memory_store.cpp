#include "runtime/memory_store.hpp"

namespace dmem::detail {

bool MemoryStore::try_reserve_within(std::uint64_t bytes, std::uint64_t limit) noexcept {
  std::uint64_t now = in_use_.load();
  std::uint64_t next = 0;
  do {
    if (now > UINT64_MAX - bytes) return false;
    next = now + bytes;
    if (next > limit) return false;
  } while (!in_use_.compare_exchange_weak(now, next));
  std::uint64_t peak = peak_.load();
  while (next > peak && !peak_.compare_exchange_weak(peak, next)) {
  }
  if (trace_ != nullptr) trace_->memory(kind_, next);
  return true;
}

void MemoryStore::release(std::uint64_t bytes) noexcept {
  const std::uint64_t before = in_use_.fetch_sub(bytes);
  if (trace_ != nullptr) trace_->memory(kind_, before - bytes);
}

}  // namespace dmem::detail
