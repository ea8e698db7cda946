// Session internals shared by the loader (loader.cpp), the residency engine
// (residency_engine.cpp) and the public functions (session.cpp).
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "dmem/plugin_registry.hpp"
#include "dmem/quantizer_instance.hpp"
#include "dmem/session.hpp"
#include "dmem/tensor_source.hpp"
#include "format/file_io.hpp"
#include "runtime/compute_device.hpp"
#include "runtime/host_region.hpp"
#include "runtime/memory_store.hpp"
#include "runtime/prequant.hpp"
#include "runtime/residency_layout.hpp"
#include "runtime/trace.hpp"

namespace dmem {
inline namespace v1 {

struct Session::Impl {
  enum class State : std::uint8_t { parked, loading, resident };
  struct GroupState {
    State state = State::parked;
    void* memory = nullptr;  // device buffer when resident
    std::uint32_t pins = 0;  // handles holding it
    std::uint64_t last_use = 0;
    bool prefetched = false;  // brought by prefetch and not acquired yet
    bool queued = false;      // waiting in the prefetch queue
  };
  struct Order {  // execution order of a component's groups, recorded on the first pass
    std::vector<std::uint32_t> sequence;
    std::vector<std::int64_t> position;  // by group index, -1 when not recorded
    bool complete = false;
  };

  Impl(const Model& m, const SessionOptions& o);
  ~Impl();

  // ---- set up (session.cpp, loader.cpp) -------------------------------------------------
  Status prepare() noexcept;  // regions, device buffers of kept groups, sources
  Status load() noexcept;     // every weight to its home, in plan order
  Status quantize_job(std::uint32_t tensor, void* device_dst, void* host_dst,
                      bool to_cache) noexcept;
  // Pre-quantized weights (session_prequant.cpp): found from the keys of every component of
  // `strategy`, each given the plugin instance that decodes it; gathered while loading.
  Status open_prequantized(const Strategy& wanted) noexcept;
  Status gather_job(std::uint32_t tensor, void* device_dst, void* host_dst, bool to_cache) noexcept;
  // The instance that decodes a packed weight of layout component `c`; null when none.
  const QuantizerInstance* packed_quantizer(std::uint32_t c,
                                            std::string_view weight) const noexcept;
  const PluginRegistry* registry() noexcept;  // options.plugins, else one discovered once
  // Host RAM dmem may still take now (options.host_memory_probe or MemAvailable and cgroup
  // limits); UINT64_MAX when unknown.
  [[nodiscard]] std::uint64_t host_room() const noexcept;
  // I/O thread `thread` may stage now: the window (staging in use + RAM available) holds
  // thread + 1 buffers of `buffer` bytes. Thread 0 always may.
  [[nodiscard]] bool may_stage(std::uint32_t thread, std::uint64_t buffer) noexcept;

  // ---- residency (residency_engine.cpp) ---------------------------------------------------
  Result<std::unique_ptr<Acquired::Impl>> acquire(std::string_view component,
                                                  std::string_view module) noexcept;
  void release(const std::vector<std::uint32_t>& groups) noexcept;
  void finish(std::string_view component) noexcept;
  void start_worker() noexcept;
  void stop_worker() noexcept;
  // Reserves device bytes, evicting idle groups (lock held). Prefetched-unused groups are evicted
  // only when `urgent` (an acquire needs the room now).
  bool reserve_device(std::uint64_t bytes, bool urgent) noexcept;
  // Lock held. With `keep_spare`, the group's device memory may stay mapped as a spare (below).
  void evict(std::uint32_t group, bool keep_spare = false) noexcept;
  void free_spares() noexcept;  // lock held; returns every spare to the device
  // Lock held: drops queued prefetches (they would take room back at once) and waits until no
  // copy is in flight (a copy holds memory only its end can release or pin).
  void settle(std::unique_lock<std::mutex>& lock) noexcept;
  // The idle group to evict next (lock held): least recently used, prefetched-unused ones last
  // and only when `urgent`; -1 when none.
  std::int64_t pick_victim(bool urgent) const noexcept;
  // Device memory; when the device itself is out of memory (another program, the host's own
  // allocations), evicts idle groups and retries before failing. `lock` is the session's lock
  // when the caller holds it, else null.
  Result<void*> allocate_device(std::uint64_t bytes, bool urgent, std::string_view what,
                                std::unique_lock<std::mutex>* lock) noexcept;
  Status onload(std::uint32_t group, std::uint32_t lane,
                bool urgent) noexcept;  // lock not held
  Status read_home(const detail::TensorSlot& slot, void* dst) noexcept;
  void record_order(std::uint32_t component, std::uint32_t group) noexcept;
  void schedule_prefetch(std::uint32_t component, std::uint32_t group) noexcept;
  void worker_loop() noexcept;

  // ---- packed weights on a GPU (packed_linear.cpp) -----------------------------------------
  Status packed_device_linear(const Acquired& handle, const TensorView& weight,
                              const TensorView* bias, const float* x, std::size_t tokens,
                              float* y) noexcept;

  // ---- pressure (pressure.cpp) ------------------------------------------------------------
  // Evicts idle groups until the device store holds at most `target` bytes, after dropping
  // queued prefetches and waiting for copies in flight; reports what stayed and why.
  TrimReport shrink_to(std::uint64_t target, std::uint64_t requested, PressureKind kind,
                       std::unique_lock<std::mutex>& lock) noexcept;
  // Headroom mode: samples free device memory and lowers or raises the device limit.
  void sample_headroom() noexcept;
  void start_watcher() noexcept;
  void stop_watcher() noexcept;
  void notify(const PressureEvent& event) const noexcept;
  // min(device budget, headroom limit); UINT64_MAX when neither limits.
  [[nodiscard]] std::uint64_t device_limit() const noexcept;

  // ---- re-planning (replan.cpp) -----------------------------------------------------------
  // No handle held and no acquire in progress (lock held): a re-plan may switch the layout.
  [[nodiscard]] bool quiet() const noexcept;
  // Moves to the best plan that fits the device memory usable now (lock held, quiet()). On
  // failure the session keeps its plan and the Status names the closest plan.
  Status replan(std::string reason, std::unique_lock<std::mutex>& lock) noexcept;
  // A re-plan now when quiet, else remembered for the next acquire boundary. Returns the
  // re-plan's Status (ok when deferred); `deferred` says which.
  Status replan_or_defer(std::string reason, bool& deferred,
                         std::unique_lock<std::mutex>& lock) noexcept;
  // The plan runs within the budgets now: its device need, its pinned and pageable homes.
  [[nodiscard]] bool plan_fits() const noexcept;
  // At an acquire boundary: the re-plan a budget cut deferred, if it can run now.
  Status replan_pending() noexcept;
  Model model;
  SessionOptions options;
  Strategy strategy;  // the plan running now (another after a re-plan)
  detail::ResidencyLayout layout;
  std::unique_ptr<detail::ComputeDevice> device;       // computes (CPU or CUDA)
  std::unique_ptr<detail::ComputeDevice> host_device;  // CPU placements compute here
  detail::Trace trace;
  detail::MemoryStore device_store;
  detail::MemoryStore pinned_store;
  detail::MemoryStore pageable_store;
  detail::MemoryStore disk_store;
  detail::HostRegion pinned_region;
  detail::HostRegion pageable_region;
  std::vector<std::optional<TensorSource>> sources;           // per layout component
  std::unique_ptr<PluginRegistry> own_plugins;                // when the options gave none
  std::vector<QuantizerInstance> quantizers;                  // per layout component (empty: none)
  std::vector<std::vector<detail::PrequantWeight>> prequant;  // per strategy component
  std::vector<QuantizerInstance> prequant_quantizers;         // PrequantWeight::quantizer
  bool direct_io = false;         // loader buffers carry O_DIRECT slack (options.direct_io)
  bool direct_io_active = false;  // every checkpoint file is read with O_DIRECT
  std::vector<std::string> quantizer_versions;  // per layout component: its plugin's version
  std::optional<std::uint64_t> cache_key;       // set when the cache file persists
  bool cache_reused = false;                    // a complete cache from an earlier session
  std::optional<detail::TempFile> cache;        // transformed weights whose home is disk
  detail::ReadFile cache_reader;

  std::vector<GroupState> groups;
  std::vector<Order> orders;
  // Device memory of groups dropped after use, kept mapped (and counted in the device store) for
  // the next group of the same size, so streaming maps and unmaps nothing per block. A
  // reservation of any other size frees them first (they never raise a peak); pressure calls,
  // finish and close free them all. A spare that reserve_device counted as an allocation's room
  // is "claimed" until allocate_device takes it. Both under mu.
  // Where packed weights are unpacked on a GPU before their GEMM: one buffer, grown to the
  // largest layer, counted in the device store, one layer at a time (unpack_mu).
  std::mutex unpack_mu;
  void* unpack_scratch = nullptr;
  std::uint64_t unpack_bytes = 0;
  std::vector<std::pair<void*, std::uint64_t>> spares;
  std::vector<std::pair<void*, std::uint64_t>> claimed;
  std::mutex mu;
  std::condition_variable cv;
  std::deque<std::uint32_t> queue;
  std::thread worker;
  bool stopping = false;
  std::uint64_t clock = 0;
  std::uint32_t live_handles = 0;  // Acquired handles not yet released
  std::string pending_replan;      // why a re-plan waits for the handles to go (empty: none)
  bool replanning = false;         // acquires wait: the layout is being replaced

  // headroom mode
  std::atomic<std::uint64_t> headroom_limit{UINT64_MAX};  // UINT64_MAX: no limit
  std::thread watcher;
  std::mutex watch_mu;
  std::condition_variable watch_cv;
  bool watch_stop = false;

  // statistics (under mu unless atomic)
  std::uint64_t acquires = 0, prefetch_hits = 0, stalls = 0, copies_to_device = 0,
                bytes_to_device = 0, copies_to_host = 0, disk_reads = 0, evictions = 0,
                evicted_bytes = 0, pin_calls = 0, alloc_retries = 0, alloc_failures = 0,
                trimmed_bytes = 0, headroom_shrinks = 0, headroom_overruns = 0, replans = 0,
                replan_failures = 0;
  double stall_seconds = 0;
  std::uint64_t load_bytes = 0;
  double load_seconds = 0;
  std::atomic<std::uint64_t> staging_in_use{0};
  std::atomic<std::uint64_t> staging_peak{0};
  std::atomic<std::uint64_t> staging_waits{0};

  std::uint32_t lane_host = 0, lane_copy = 0, lane_compute = 0;
  std::uint64_t step_start = 0;
  std::uint32_t step_index = 0;
  bool in_step = false;
  std::uint64_t nvtx_step = 0;  // NVTX range of the step in progress
  std::uint64_t phase_start = 0;
  std::string phase_name;
  bool in_phase = false;
};

/// What an Acquired handle holds.
struct Acquired::Impl {
  std::shared_ptr<Session::Impl> session;
  std::string component;
  std::string module;
  std::vector<std::uint32_t> groups;
  std::vector<TensorView> views;
  std::vector<std::pair<void*, std::uint64_t>> scratch;  // upcast copies of cast weights
  bool released = false;
};

}  // namespace v1
}  // namespace dmem
