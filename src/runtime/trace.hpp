// PLACEHOLDER until the trace branch merges: same interface.
#pragma once
#include <cstdint>
#include <initializer_list>
#include <string_view>
#include "dmem/status.hpp"
namespace dmem::detail {
enum class Store : std::uint8_t { device, pinned, pageable, disk };
std::string_view store_name(Store s) noexcept;
struct TraceArg { std::string_view key; std::uint64_t value; };
class Trace {
 public:
  Trace() noexcept;
  void enable(bool on) noexcept { on_ = on; }
  bool enabled() const noexcept { return on_; }
  std::uint64_t now_ns() const noexcept;
  std::uint32_t lane(std::string_view) noexcept { return 0; }
  void span(std::uint32_t, std::string_view, std::string_view, std::uint64_t, std::uint64_t, std::initializer_list<TraceArg> = {}) noexcept {}
  void instant(std::uint32_t, std::string_view, std::string_view, std::initializer_list<TraceArg> = {}) noexcept {}
  void memory(Store, std::uint64_t) noexcept {}
  void set_info(std::string_view, std::string_view) noexcept {}
  void set_info_number(std::string_view, double) noexcept {}
  Status write_chrome_json(std::string_view) const noexcept { return Status(Errc::unsupported, "no trace yet"); }
  std::uint64_t dropped() const noexcept { return 0; }
 private:
  bool on_ = false;
  std::uint64_t start_ = 0;
};
}  // namespace dmem::detail
