// Session: executes a Strategy. Loads the weights to their homes with bounded host memory, then
// hands the host's engine its modules on the compute device (acquire) while it moves, prefetches
// and drops the others by the strategy's placement.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "dmem/dtype.hpp"
#include "dmem/hardware.hpp"
#include "dmem/model.hpp"
#include "dmem/plan.hpp"
#include "dmem/simulated_device.hpp"
#include "dmem/status.hpp"
#include "dmem/strategy.hpp"

namespace dmem {
inline namespace v1 {

class PluginRegistry;

enum class DeviceKind : std::uint8_t { cpu, cuda };

/// Where a weight rests between uses. `device` is the compute device's memory (VRAM on CUDA;
/// on the CPU device a budgeted arena of host memory that plays the GPU's part).
enum class StoreKind : std::uint8_t { device, pinned, pageable, disk };
[[nodiscard]] std::string_view store_kind_name(StoreKind store) noexcept;

/// Reported during load, at most every few milliseconds and once at the end.
struct LoadProgress {
  std::uint64_t bytes_done = 0;
  std::uint64_t bytes_total = 0;
  double seconds = 0;
  double bytes_per_second = 0;
  double eta_seconds = 0;
};

/// What the session did under memory pressure, reported through SessionOptions::on_pressure.
enum class PressureKind : std::uint8_t {
  allocation,  ///< a device allocation failed; idle weights were evicted and it was retried
  trim,        ///< Session::trim
  budget,      ///< Session::set_budget
  make_room,   ///< Session::make_room (the host's own out-of-memory)
  headroom,    ///< another program took device memory and headroom mode gave some back
};
[[nodiscard]] std::string_view pressure_kind_name(PressureKind kind) noexcept;

struct PressureEvent {
  PressureKind kind = PressureKind::allocation;
  std::uint64_t requested = 0;  ///< bytes the allocation or the call needed
  std::uint64_t freed = 0;      ///< device bytes returned by evicting
  bool resolved = false;        ///< the allocation succeeded / the call freed what it needed
  std::string_view what;        ///< the module or tensor being allocated, when there is one
};

/// Re-planning: when evicting is not enough (a device budget cut below what the plan needs, or
/// a device allocation that fails with nothing idle left), the session asks the planner again
/// with the memory it may use now and moves to the best plan that fits, between acquires
/// (docs/budgets.md). The planner needs what the session's plan was made with.
struct ReplanOptions {
  Hardware hardware;  ///< the machine the plan was made for (its GPU's memory is replaced by
                      ///< the session's device limit at the time of the re-plan)
  Workload workload;
  PlanOptions plan;  ///< preference, margin, plugins (must outlive the session when given)
};

/// Told through SessionOptions::on_replan when the session moved to another plan.
struct ReplanEvent {
  const Strategy* old_plan = nullptr;
  const Strategy* new_plan = nullptr;
  std::string_view reason;         ///< what made the old plan unworkable
  std::uint64_t device_limit = 0;  ///< device bytes the new plan was chosen for
  std::uint64_t bytes_copied = 0;  ///< weights moved from memory to their new home
  std::uint64_t bytes_read = 0;    ///< weights read again from the checkpoint or cache file
};

struct SessionOptions {
  DeviceKind device = DeviceKind::cpu;
  /// Budgets per store in bytes; 0 = unlimited. A plan's estimate is the usual source
  /// (session_options_for()).
  std::uint64_t device_budget = 0;
  std::uint64_t pinned_budget = 0;
  std::uint64_t pageable_budget = 0;
  /// The loader reads through `io_threads` buffers of `staging_bytes` each: host memory during
  /// load is the steady footprint plus this window.
  std::uint32_t io_threads = 2;
  std::uint64_t staging_bytes = 16ull << 20;
  /// Where transformed weights whose home is disk are cached (unchanged ones stay in the
  /// checkpoint file). Given: the cache file persists there, named by a key over the checkpoint
  /// files' identity, the strategy's storage and the plugin version, and the next session that
  /// needs the same bytes reads it instead of transforming again. Empty: a temporary in the
  /// system temp folder, removed at close.
  std::string cache_dir;
  /// Called from the loading thread. Must not call back into the session.
  std::function<void(const LoadProgress&)> progress;
  /// Read checkpoints with O_DIRECT, bypassing the page cache: a checkpoint larger than the free
  /// RAM then loads without evicting other programs' cached files, and the load's memory is
  /// only dmem's own. Costs a copy out of staging for weights that would otherwise be read
  /// straight into their home. Files on a file system without O_DIRECT are read buffered
  /// (SessionStats::direct_io tells).
  bool direct_io = false;
  /// Record a timeline (write_trace()).
  bool trace = false;
  /// Where quantized storage finds its quantizer (StorageKind::quantized, by id). Null: the
  /// session discovers plugins itself (DMEM_PLUGIN_PATH, the installed folder, plugins/ beside
  /// the executable). Must outlive the session when given.
  const PluginRegistry* plugins = nullptr;

  /// Headroom mode: keep this many bytes of the device free counting every other process (0 =
  /// off). Free memory is sampled at each acquire and every `headroom_interval_ms` (0: at
  /// acquires only); when another program grows, idle weights are evicted until the headroom is
  /// back; when it leaves, residency grows again. Weights an acquire needs now are never refused
  /// for the headroom's sake (SessionStats::headroom_overruns counts those loads).
  std::uint64_t headroom = 0;
  std::uint32_t headroom_interval_ms = 5;
  /// Free and total memory of the compute device. Null: the device's own query (cudaMemGetInfo
  /// on CUDA; on the CPU device the simulated device when there is one, else MemAvailable and
  /// MemTotal of the system). Called from the session's threads (several at once) without its
  /// locks held.
  std::function<DeviceMemoryInfo()> memory_probe;
  /// Host RAM dmem may still take now, in bytes. The loader sizes its staging window by it as
  /// the load goes (I/O threads pause rather than stage beyond it; one buffer always runs).
  /// Null: MemAvailable of /proc/meminfo capped by this process's cgroup v2 or v1 limits
  /// (memory.max - memory.current, memory.limit_in_bytes - memory.usage_in_bytes). Called from
  /// the loader's threads, several at once.
  std::function<std::uint64_t()> host_memory_probe;
  /// CPU device only: draw device memory from this simulated device shared with other
  /// programs, so allocations fail when they hold it (see SimulatedDevice).
  std::shared_ptr<SimulatedDevice> simulated_device;
  /// Told what the session did under memory pressure, from the thread that met it (possibly
  /// with the session's lock held: must not call back into the session).
  std::function<void(const PressureEvent&)> on_pressure;
  /// Set: re-plan when evicting is not enough (see ReplanOptions). Unset: budget cuts below the
  /// plan's need and allocation failures are reported as errors only.
  std::optional<ReplanOptions> replan;
  /// Told when the session moved to another plan, from the thread that triggered it with the
  /// session's lock held (must not call back into the session).
  std::function<void(const ReplanEvent&)> on_replan;
};

/// What trim(), set_budget() and make_room() did.
struct TrimReport {
  std::uint64_t requested = 0;        ///< bytes asked for
  std::uint64_t freed = 0;            ///< device bytes returned to the driver (or the system)
  std::uint64_t in_use = 0;           ///< device store after the call
  std::uint64_t held_by_handles = 0;  ///< idle weights only can go: these are acquired now
  std::uint64_t kept_by_plan = 0;     ///< resident weights, whose only copy is on the device
  std::uint64_t host_buffers = 0;     ///< allocate_buffer() memory and upcast scratch
  double seconds = 0;                 ///< how long the call took
  /// Why less than requested was freed; empty when the call did all it was asked.
  std::string reason;
  /// The call moved the session to another plan (SessionOptions::replan), or will at the next
  /// acquire once every handle is released (`replan_pending`).
  bool replanned = false;
  bool replan_pending = false;
  [[nodiscard]] bool complete() const noexcept { return reason.empty(); }
};

/// The memory of one store.
struct StoreStats {
  std::uint64_t in_use = 0;
  std::uint64_t peak = 0;
  std::uint64_t budget = 0;  ///< 0 = unlimited
};

struct SessionStats {
  StoreStats device, pinned, pageable, disk;
  std::uint64_t load_bytes = 0;  ///< bytes read while loading
  double load_seconds = 0;
  std::uint64_t staging_peak = 0;   ///< bytes of staging buffers in use at once during load
  std::uint64_t staging_waits = 0;  ///< times an I/O thread paused: RAM available was short
  std::uint64_t acquires = 0;
  std::uint64_t prefetch_hits = 0;  ///< acquires whose weights were already on the device
  std::uint64_t stalls = 0;         ///< acquires that waited for a copy or a read
  double stall_seconds = 0;
  std::uint64_t copies_to_device = 0;  ///< host -> device moves (one per group onload)
  std::uint64_t bytes_to_device = 0;
  std::uint64_t copies_to_host = 0;  ///< device -> host moves (unchanged weights: always 0)
  std::uint64_t disk_reads = 0;      ///< reads from the disk tier after load
  std::uint64_t evictions = 0;
  std::uint64_t evicted_bytes = 0;
  std::uint64_t pin_calls = 0;          ///< pinned-memory allocations (all made during load)
  std::uint64_t alloc_retries = 0;      ///< device allocations that failed and were retried after
                                        ///< evicting idle weights
  std::uint64_t alloc_failures = 0;     ///< device allocations that failed even after evicting
  std::uint64_t trimmed_bytes = 0;      ///< freed by trim/set_budget/make_room/headroom
  std::uint64_t headroom_shrinks = 0;   ///< times headroom mode evicted for another program
  std::uint64_t headroom_overruns = 0;  ///< loads an acquire needed beyond the headroom
  std::uint64_t headroom_limit = 0;     ///< device bytes headroom mode allows dmem now (0 when
                                        ///< off or when other programs leave no room)
  std::uint64_t replans = 0;            ///< moves to another plan (SessionOptions::replan)
  std::uint64_t replan_failures = 0;    ///< re-plans that found no plan or failed midway
  bool direct_io = false;  ///< every checkpoint file was read with O_DIRECT (SessionOptions)
  /// The disk tier's transformed weights came from the cache file of an earlier session
  /// (SessionOptions::cache_dir) instead of being transformed again.
  bool cache_reused = false;
};

/// A tensor on the compute device, in the compute dtype for layerwise-cast weights and in its
/// stored dtype otherwise. Valid while the Acquired handle that gave it is alive.
struct TensorView {
  const std::string* name = nullptr;  ///< full name within the component
  const void* data = nullptr;
  DType dtype = DType::f32;
  const std::vector<std::uint64_t>* shape = nullptr;  ///< PyTorch order, contiguous
  std::uint64_t nbytes = 0;
  DeviceKind device = DeviceKind::cpu;
  /// Quantized by the component's quantizer: `data` holds its packed bytes, shape is the original
  /// tensor's and dtype the one the quantizer was given (the original, or f32 when the quantizer
  /// does not take it). Session::linear runs it through the quantizer.
  bool packed = false;
};

class Session;

/// Keeps one module's weights on the compute device until destroyed or released.
class Acquired {
 public:
  Acquired() noexcept;
  Acquired(Acquired&&) noexcept;
  Acquired& operator=(Acquired&&) noexcept;
  Acquired(const Acquired&) = delete;
  Acquired& operator=(const Acquired&) = delete;
  ~Acquired();

  [[nodiscard]] bool valid() const noexcept { return impl_ != nullptr; }
  [[nodiscard]] const std::string& component() const noexcept;
  [[nodiscard]] const std::string& module() const noexcept;
  /// Every tensor of the module, in checkpoint order.
  [[nodiscard]] const std::vector<TensorView>& tensors() const noexcept;
  /// The tensor with this full name, or nullptr.
  [[nodiscard]] const TensorView* find(std::string_view name) const noexcept;
  /// Lets the weights go now (idempotent).
  void release() noexcept;

  struct Impl;

 private:
  friend class Session;
  explicit Acquired(std::unique_ptr<Impl> impl) noexcept;
  std::unique_ptr<Impl> impl_;
};

class Session {
 public:
  /// Checks that `strategy` names components of `model` that this runtime can execute, reserves
  /// the stores and loads every weight to its home in plan order. On failure nothing stays
  /// allocated. The model must have files (a catalog model has none: write_synthetic_model()).
  [[nodiscard]] static Result<Session> open(const Model& model, const Strategy& strategy,
                                            const SessionOptions& options = {}) noexcept;

  Session() noexcept;
  Session(Session&&) noexcept;
  Session& operator=(Session&&) noexcept;
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;
  ~Session();

  /// The units a host acquires for `component`, in natural execution order: each block
  /// ("transformer_blocks.3") and each top-level module outside blocks ("img_in"). Empty for an
  /// unknown component.
  [[nodiscard]] std::vector<std::string> modules(std::string_view component) const;

  /// Makes `module` (a unit from modules(), a leaf inside one, or "" for the whole component)
  /// resident on the compute device and prefetches what comes next in execution order (recorded
  /// on the first pass). Thread-safe. Fails with out_of_memory when the device budget cannot hold
  /// it with what other handles keep; with SessionOptions::replan and no handle held, it first
  /// moves to a plan that fits and tries again.
  [[nodiscard]] Result<Acquired> acquire(std::string_view component,
                                         std::string_view module) noexcept;

  /// y[tokens, out] = x[tokens, in] · Wᵀ (+ bias) for the linear leaf `leaf` ("…attn.to_q") of an
  /// acquired module, whatever the weight's storage. x and y are f32 arrays in the memory of the
  /// device that holds the weight (TensorView::device): host memory on the CPU device,
  /// allocate_buffer() memory on CUDA.
  [[nodiscard]] Status linear(const Acquired& handle, std::string_view leaf, const float* x,
                              std::size_t tokens, float* y) noexcept;

  /// Memory on the compute device for the host's own tensors (activations), counted in the
  /// device store and its budget. Host memory on the CPU device. Give it back with
  /// release_buffer() before the session closes.
  [[nodiscard]] Result<void*> allocate_buffer(std::uint64_t bytes) noexcept;
  void release_buffer(void* buffer, std::uint64_t bytes) noexcept;
  /// Copies between host memory and a buffer from allocate_buffer() (or a TensorView).
  [[nodiscard]] Status upload(void* device_dst, const void* host_src, std::uint64_t bytes) noexcept;
  [[nodiscard]] Status download(void* host_dst, const void* device_src,
                                std::uint64_t bytes) noexcept;
  /// The device this session computes on.
  [[nodiscard]] DeviceKind device() const noexcept;
  /// What runs linear() on that device: "OpenBLAS sgemm (f32)", "cuBLASLt 13.0.2", or the CUDA
  /// reference kernel with the reason cuBLASLt is missing (a run far slower than planned).
  [[nodiscard]] std::string linear_backend() const;

  /// The phase of `component` is over: weights that the placement does not keep (model offload,
  /// dropped) leave the device.
  void finish(std::string_view component) noexcept;

  /// Marks steps and phases on the timeline (no effect without tracing).
  void begin_step(std::uint32_t index) noexcept;
  void end_step() noexcept;
  /// A pipeline phase ("encode", "denoise", "decode"): a "phase" span from begin to end, which
  /// `dmem report` compares with the plan's per-phase estimate. A begin ends the open phase.
  void begin_phase(std::string_view name) noexcept;
  void end_phase() noexcept;

  /// Gives `bytes` of device memory back now: evicts idle weights by policy (least recently used
  /// first, prefetched ones last), waits for copies in flight and unmaps what it evicted before
  /// returning. kAll frees every idle weight. Any thread, any time.
  static constexpr std::uint64_t kAll = ~std::uint64_t{0};
  [[nodiscard]] TrimReport trim(std::uint64_t bytes) noexcept;
  /// Changes a store's budget at any time from any thread. Lowering the device budget evicts
  /// until the store fits before returning (what acquired handles hold stays and is reported);
  /// raising it lets residency grow over the next steps. A budget below what the plan needs (its
  /// resident weights plus its largest moving unit; for pinned and pageable what it parks there)
  /// moves the session to another plan when SessionOptions::replan is set — now when no handle
  /// is held, else at the next acquire (TrimReport::replan_pending) — and fails with
  /// runtime.replan.none, naming the closest plan, when none fits; without replan such a pinned
  /// or pageable cut fails with runtime.budget.<store>. The disk store has no budget.
  [[nodiscard]] Result<TrimReport> set_budget(StoreKind store, std::uint64_t bytes) noexcept;
  /// The host's own allocation of `bytes` failed (its activations): frees at least that much
  /// device memory if idle weights allow, and room for it within the device budget, so the host
  /// can retry the same step. complete() is false when it could not.
  [[nodiscard]] TrimReport make_room(std::uint64_t bytes) noexcept;

  /// The strategy the session runs now (another one after a re-plan).
  [[nodiscard]] Strategy strategy() const;

  [[nodiscard]] SessionStats stats() const noexcept;
  /// Writes the timeline as Chrome trace JSON (SessionOptions::trace must have been set).
  [[nodiscard]] Status write_trace(std::string_view path) const noexcept;
  /// Attaches a fact to the trace's "dmem" object (plan estimates beside measured figures).
  void trace_info(std::string_view key, double value) noexcept;

  struct Impl;

 private:
  explicit Session(std::shared_ptr<Impl> impl) noexcept;
  std::shared_ptr<Impl> impl_;  // shared with the handles it gave out
};

}  // namespace v1
}  // namespace dmem
