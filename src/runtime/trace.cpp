#include "runtime/trace.hpp"
#include <chrono>
namespace dmem::detail {
static std::uint64_t mono() noexcept { return static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch()).count()); }
std::string_view store_name(Store s) noexcept { switch (s) { case Store::device: return "device"; case Store::pinned: return "pinned"; case Store::pageable: return "pageable"; case Store::disk: return "disk"; } return "?"; }
Trace::Trace() noexcept : start_(mono()) {}
std::uint64_t Trace::now_ns() const noexcept { return mono() - start_; }
}  // namespace dmem::detail
