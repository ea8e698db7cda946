// The runtime's timeline recorder: spans (loads, copies, waits, evictions, steps, phases, compute),
// instants and memory counters per store, written as Chrome trace JSON that Perfetto opens and
// `dmem report` summarises (docs/runtime.md, "Traces").
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <map>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "dmem/status.hpp"

namespace dmem::detail {

/// Memory stores, in the order reports list them.
enum class Store : std::uint8_t { device, pinned, pageable, disk };
inline constexpr std::size_t kStoreCount = 4;

/// "device", "pinned", "pageable", "disk".
[[nodiscard]] std::string_view store_name(Store s) noexcept;

/// One numeric argument of an event ("bytes", "d2h", "index"). The key is copied.
struct TraceArg {
  std::string_view key;
  std::uint64_t value;
};

/// Records a bounded timeline from many threads at once. Disabled (the default) every recording
/// call returns after one relaxed atomic load and allocates nothing. Names of lanes, categories
/// and argument keys live in fixed tables; event names are interned once, so a trace of many
/// steps over the same blocks costs one event record (64 bytes) per event.
class Trace {
 public:
  /// Events kept before further ones are counted as dropped.
  static constexpr std::size_t kDefaultCapacity = 2'000'000;
  static constexpr std::size_t kMaxLanes = 256;      ///< later lanes share the last ("other")
  static constexpr std::size_t kMaxCategories = 32;  ///< later categories share "other"
  static constexpr std::size_t kMaxArgKeys = 64;     ///< args with later keys are left out
  static constexpr std::size_t kMaxArgs = 4;         ///< args per event; more are left out
  static constexpr std::size_t kMaxNameBytes = 256;  ///< longer names are cut
  static constexpr std::size_t kMaxTableName = 47;   ///< lane/category/key names are cut here
  static constexpr std::size_t kMaxDistinctNames = 1'000'000;  ///< later names become "(other)"

  Trace() noexcept;  ///< starts the clock (steady_clock)
  ~Trace();
  Trace(const Trace&) = delete;
  Trace& operator=(const Trace&) = delete;

  void enable(bool on) noexcept;
  [[nodiscard]] bool enabled() const noexcept { return enabled_.load(std::memory_order_relaxed); }
  /// Changes the event cap (tests use small caps); events already kept stay.
  void set_capacity(std::size_t events) noexcept;

  /// Nanoseconds since construction.
  [[nodiscard]] std::uint64_t now_ns() const noexcept;

  /// A named lane (a Chrome-trace thread: "compute", "io 0", "copy 0", "host"). Idempotent per
  /// name, thread-safe, works (without allocating) whether or not recording is enabled.
  std::uint32_t lane(std::string_view name) noexcept;

  /// A complete span. Categories `dmem report` reads: "load" (bytes), "copy" (bytes; d2h=1 for
  /// device->host), "wait", "evict" (bytes), "step" (index), "phase", "compute", "alloc". Also
  /// "pressure" (bytes freed by a trim, budget cut, make_room or headroom shrink), "allocate"
  /// and "free" (device memory mapped before a group's copy, unmapped at its eviction), which it
  /// skips.
  void span(std::uint32_t lane, std::string_view category, std::string_view name,
            std::uint64_t start_ns, std::uint64_t end_ns,
            std::initializer_list<TraceArg> args = {}) noexcept;
  void span(std::uint32_t lane, std::string_view category, std::string_view name,
            std::uint64_t start_ns, std::uint64_t end_ns, std::span<const TraceArg> args) noexcept;
  /// A point in time, now.
  void instant(std::uint32_t lane, std::string_view category, std::string_view name,
               std::initializer_list<TraceArg> args = {}) noexcept;
  /// Bytes in use in a store now: the counter track "memory <store>".
  void memory(Store store, std::uint64_t bytes_in_use) noexcept;

  /// Run facts under the JSON's top-level "dmem" object ("device", "budget.device",
  /// "estimate.step_seconds" …). A later value for a key replaces the earlier one. Like every
  /// recording call, a no-op while disabled: enable first.
  void set_info(std::string_view key, std::string_view value) noexcept;
  void set_info_number(std::string_view key, double value) noexcept;

  /// Writes {"traceEvents":[…],"displayTimeUnit":"ms","dmem":{…}} atomically (temporary file and
  /// rename; hostile targets refused with rule file.write_target). Safe while other threads record:
  /// the events recorded before the call are written.
  [[nodiscard]] Status write_chrome_json(std::string_view path) const noexcept;

  /// Events kept so far.
  [[nodiscard]] std::size_t size() const noexcept;
  /// Events not recorded because of the cap.
  [[nodiscard]] std::uint64_t dropped() const noexcept {
    return dropped_.load(std::memory_order_relaxed);
  }

 private:
  enum class Kind : std::uint8_t { span, instant, counter };
  struct Event {
    std::uint64_t start_ns;
    std::uint64_t end_ns;
    std::array<std::uint64_t, kMaxArgs> values;
    std::uint32_t name;  // interned id; counters: unused
    std::uint16_t lane;  // counters: the store
    std::uint8_t category;
    Kind kind;
    std::uint8_t arg_count;
    std::array<std::uint8_t, kMaxArgs> keys;
  };
  static constexpr std::size_t kChunkEvents = 8192;
  using Chunk = std::array<Event, kChunkEvents>;
  struct TableName {
    std::array<char, kMaxTableName + 1> text{};
    std::uint8_t size = 0;
    [[nodiscard]] std::string_view view() const noexcept { return {text.data(), size}; }
  };
  struct Info {
    std::string text;
    double number = 0;
    bool is_number = false;
  };

  void record(Kind kind, std::uint32_t lane, std::string_view category, std::string_view name,
              std::uint64_t start_ns, std::uint64_t end_ns,
              std::span<const TraceArg> args) noexcept;
  // These run under mutex_.
  template <std::size_t N>
  static std::size_t intern_table(std::array<TableName, N>& table, std::size_t& used,
                                  std::string_view name) noexcept;
  std::uint32_t intern_name(std::string_view name) noexcept;

  const std::chrono::steady_clock::time_point origin_;
  std::atomic<bool> enabled_{false};
  std::atomic<std::uint64_t> dropped_{0};

  mutable std::mutex mutex_;
  std::size_t capacity_ = kDefaultCapacity;
  std::size_t count_ = 0;
  std::vector<std::unique_ptr<Chunk>> chunks_;
  std::array<TableName, kMaxLanes> lanes_{};
  std::size_t lane_count_ = 0;
  std::array<TableName, kMaxCategories> categories_{};
  std::size_t category_count_ = 0;
  std::array<TableName, kMaxArgKeys> arg_keys_{};
  std::size_t arg_key_count_ = 0;
  std::map<std::string, std::uint32_t, std::less<>> name_ids_;
  std::vector<const std::string*> names_;  // id -> name (map nodes never move)
  std::map<std::string, Info, std::less<>> info_;
};

/// Records a span from construction to destruction (nothing at all when the trace is disabled).
/// The name is copied (it is often a temporary); `category` and the argument keys must outlive
/// the span (they are literals in practice).
class ScopedSpan {
 public:
  ScopedSpan(Trace& trace, std::uint32_t lane, std::string_view category, std::string_view name,
             std::initializer_list<TraceArg> args = {}) noexcept;
  ~ScopedSpan();
  ScopedSpan(const ScopedSpan&) = delete;
  ScopedSpan& operator=(const ScopedSpan&) = delete;

  /// Sets (or adds) an argument known only later, such as the bytes a read returned.
  void set_arg(std::string_view key, std::uint64_t value) noexcept;

 private:
  Trace* trace_;  // null when the trace was disabled at construction
  std::uint32_t lane_;
  std::string_view category_;
  std::string name_;  // left empty when disabled: nothing is allocated
  std::uint64_t start_ns_ = 0;
  std::array<TraceArg, Trace::kMaxArgs> args_{};
  std::size_t arg_count_ = 0;
};

}  // namespace dmem::detail
