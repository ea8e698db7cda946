// Session's public functions: open (layout, stores, load), acquire/release handles, linear,
// statistics and the trace.
#include "dmem/session.hpp"

#include <string>
#include <utility>
#include <vector>

#include "backend/cuda/cuda_device.hpp"
#include "runtime/nvtx_range.hpp"
#include "runtime/session_impl.hpp"

namespace dmem {
inline namespace v1 {

std::string_view store_kind_name(StoreKind store) noexcept {
  switch (store) {
    case StoreKind::device:
      return "device";
    case StoreKind::pinned:
      return "pinned";
    case StoreKind::pageable:
      return "pageable";
    case StoreKind::disk:
      return "disk";
  }
  return "unknown";
}

Session::Impl::Impl(const Model& m, const SessionOptions& o)
    : model(m),
      options(o),
      device_store(detail::Store::device, o.device_budget, &trace),
      pinned_store(detail::Store::pinned, o.pinned_budget, &trace),
      pageable_store(detail::Store::pageable, o.pageable_budget, &trace),
      disk_store(detail::Store::disk, 0, &trace) {
  trace.enable(o.trace);
  lane_host = trace.lane("host");
  lane_copy = trace.lane("copy 0");
  lane_compute = trace.lane("compute");
}

Session::Impl::~Impl() {
  stop_watcher();
  stop_worker();
  free_spares();
  if (unpack_scratch != nullptr) {
    device->free(unpack_scratch, unpack_bytes);
    device_store.release(unpack_bytes);
  }
  for (const auto& [memory, bytes] : claimed) {  // none unless a load failed midway
    device->free(memory, bytes);
    device_store.release(bytes);
  }
  claimed.clear();
  for (std::uint32_t g = 0; g < groups.size(); ++g) {
    if (groups[g].memory != nullptr) {
      device->free(groups[g].memory, layout.groups[g].device_bytes);
      device_store.release(layout.groups[g].device_bytes);
      groups[g].memory = nullptr;
    }
  }
  if (device && pinned_region.data() != nullptr) device->unpin(pinned_region.data());
  pinned_store.release(pinned_region.size());
  pageable_store.release(pageable_region.size());
}

Session::Session() noexcept = default;
Session::Session(std::shared_ptr<Impl> impl) noexcept : impl_(std::move(impl)) {}
Session::Session(Session&&) noexcept = default;
Session& Session::operator=(Session&&) noexcept = default;
Session::~Session() = default;

Result<Session> Session::open(const Model& model, const Strategy& strategy,
                              const SessionOptions& options) noexcept {
  auto impl = std::make_shared<Impl>(model, options);
  impl->host_device = detail::make_cpu_device();
  if (!impl->host_device) return Status(Errc::out_of_memory, "could not create the CPU device");
  if (options.device == DeviceKind::cuda) {
    auto cuda = detail::make_cuda_device(0);
    if (!cuda) return cuda.status();
    impl->device = std::move(cuda.value());
  } else {
    impl->device = detail::make_cpu_device(options.simulated_device);
  }
  if (!impl->device) return Status(Errc::out_of_memory, "could not create the compute device");
  // Quantizers for quantized storage, from the host's registry or one discovered here.
  impl->quantizers.resize(strategy.components.size());
  std::vector<const QuantizerInstance*> quantizers(strategy.components.size(), nullptr);
  for (std::size_t i = 0; i < strategy.components.size(); ++i) {
    const ComponentStrategy& cs = strategy.components[i];
    if (cs.storage.kind != StorageKind::quantized) continue;
    const PluginRegistry* registry = options.plugins;
    if (registry == nullptr) {
      if (!impl->own_plugins) {
        impl->own_plugins = std::make_unique<PluginRegistry>();
        (void)impl->own_plugins->discover();
      }
      registry = impl->own_plugins.get();
    }
    auto q = registry->create_quantizer(cs.storage.quantizer, cs.storage.params);
    if (!q) {
      std::string what = "component '";
      what += cs.component;
      what += "': ";
      what += q.status().message();
      return Status(q.status().code(), std::move(what))
          .with_rule(q.status().rule())
          .with_file(q.status().file())
          .with_hint(q.status().hint());
    }
    if (options.device == DeviceKind::cuda) {
      // Packed on the host as the loader reads (the plugin's CPU quantize), unpacked on the GPU
      // by the plugin's CUDA kernel before each layer.
      if ((q->caps().exec_devices & kDeviceCuda) == 0) {
        return Status(Errc::unsupported, "component '" + cs.component + "': quantizer '" +
                                             cs.storage.quantizer +
                                             "' has no CUDA kernels and this session computes "
                                             "on the GPU")
            .with_rule("runtime.quantizer.device")
            .with_hint(
                "choose a quantizer with CUDA kernels (nf4, gguf, bnb int8) or run "
                "with --device cpu");
      }
    } else if ((q->caps().exec_devices & kDeviceCpu) == 0) {
      return Status(Errc::unsupported, "component '" + cs.component + "': quantizer '" +
                                           cs.storage.quantizer +
                                           "' executes on CUDA only and this session computes "
                                           "on the CPU")
          .with_rule("runtime.quantizer.device")
          .with_hint(
              "choose a quantizer with CPU kernels (nf4, gguf, fp8 weight-only) or run on "
              "a GPU");
    }
    impl->quantizers[i] = std::move(q.value());
    quantizers[i] = &impl->quantizers[i];
    impl->quantizer_versions.resize(strategy.components.size());
    if (const PluginInfo* info = registry->find(cs.storage.quantizer)) {
      std::string& v = impl->quantizer_versions[i];
      v = info->id;
      v.append(" ").append(info->version).append(" ").append(info->path);
    }
  }
  DMEM_TRY(impl->open_prequantized(strategy));
  impl->strategy = strategy;
  auto layout = detail::make_layout(impl->model, strategy, quantizers, &impl->prequant);
  if (!layout) return layout.status();
  impl->layout = std::move(layout.value());
  impl->groups.resize(impl->layout.groups.size());
  impl->orders.resize(impl->layout.components.size());
  for (auto& order : impl->orders) order.position.assign(impl->layout.groups.size(), -1);
  impl->trace.set_info("device", options.device == DeviceKind::cuda ? "cuda" : "cpu");
  impl->trace.set_info_number("budget.device", static_cast<double>(options.device_budget));
  impl->trace.set_info_number("budget.pinned", static_cast<double>(options.pinned_budget));
  impl->trace.set_info_number("budget.pageable", static_cast<double>(options.pageable_budget));
  DMEM_TRY(impl->prepare());
  DMEM_TRY(impl->load());
  impl->start_worker();
  impl->sample_headroom();
  impl->start_watcher();
  return Session(std::move(impl));
}

std::vector<std::string> Session::modules(std::string_view component) const {
  if (!impl_) return {};
  std::lock_guard<std::mutex> lock(impl_->mu);  // a re-plan replaces the layout
  const auto* cl = impl_->layout.find(component);
  return cl == nullptr ? std::vector<std::string>{} : cl->units;
}

Result<Acquired> Session::acquire(std::string_view component, std::string_view module) noexcept {
  if (!impl_) return Status(Errc::invalid_argument, "acquire on a closed session");
  impl_->sample_headroom();  // acquire boundaries are where another program's growth is seen
  // A re-plan that a budget cut deferred while handles were held runs here, between acquires.
  // Its failure is not this acquire's: the old plan may still serve it.
  (void)impl_->replan_pending();
  auto handle = impl_->acquire(component, module);
  if (!handle && handle.status().code() == Errc::out_of_memory && impl_->options.replan) {
    // Evicting was not enough: move to a plan that fits the memory usable now and try again.
    std::unique_lock<std::mutex> lock(impl_->mu);
    if (impl_->quiet()) {
      std::string why = "acquiring '";
      why += module;
      why += "' failed: ";
      why += handle.status().message();
      Status replanned = impl_->replan(std::move(why), lock);
      lock.unlock();
      if (!replanned) return replanned;
      handle = impl_->acquire(component, module);
    }
  }
  if (!handle) return handle.status();
  handle.value()->session = impl_;
  return Acquired(std::move(handle.value()));
}

Status Session::linear(const Acquired& handle, std::string_view leaf, const float* x,
                       std::size_t tokens, float* y) noexcept {
  if (!impl_ || !handle.valid() || handle.impl_->released) {
    return Status(Errc::invalid_argument, "linear on a released handle or closed session")
        .with_rule("runtime.handle");
  }
  std::string weight_name(leaf);
  weight_name += ".weight";
  std::string bias_name(leaf);
  bias_name += ".bias";
  const TensorView* w = handle.find(weight_name);
  if (w == nullptr || w->shape->size() != 2) {
    return Status(Errc::not_found,
                  "no 2-D weight '" + weight_name + "' in module '" + handle.module() + "'")
        .with_rule("runtime.linear.weight")
        .with_hint("name a linear leaf inside the acquired module");
  }
  const TensorView* b = handle.find(bias_name);
  if (w->packed && w->device == DeviceKind::cuda)
    return impl_->packed_device_linear(handle, *w, b, x, tokens, y);
  if (w->packed) {
    // Packed by the component's quantizer. On the CPU it unpacks the weight into f32 scratch
    // (one tensor per thread) and the layer runs through the same sgemm as unpacked weights:
    // plugins' own CPU linear kernels are references, not tuned GEMMs.
    std::uint32_t c = 0;
    while (c < impl_->layout.components.size() &&
           impl_->layout.components[c].name != handle.component())
      ++c;
    const QuantizerInstance* q =
        c == impl_->layout.components.size() ? nullptr : impl_->packed_quantizer(c, weight_name);
    if (q == nullptr)
      return Status(Errc::internal, "a packed weight without its quantizer")
          .with_tensor(weight_name);
    const HostTensor weight{w->dtype, *w->shape, w->data, w->nbytes};
    // On the CPU the quantizer sees f32 activations and an f32 bias.
    HostTensor bias;
    std::vector<float> bias_f32;
    if (b != nullptr) {
      bias_f32.resize((*b->shape)[0]);
      DMEM_TRY(convert(b->dtype, b->data, DType::f32, bias_f32.data(), bias_f32.size()));
      bias = HostTensor{DType::f32, *b->shape, bias_f32.data(), bias_f32.size() * 4};
    }
    const detail::NvtxRange nvtx(detail::NvtxKind::compute, weight_name.c_str());
    const std::uint64_t t0 = impl_->trace.now_ns();
    thread_local std::vector<float> unpacked;
    const std::uint64_t elements = (*w->shape)[0] * (*w->shape)[1];
    unpacked.resize(elements);
    Status status = q->dequantize(weight, DType::f32, unpacked.data(), elements * 4);
    if (status) {
      detail::LinearArgs args;
      args.weight = unpacked.data();
      args.weight_dtype = DType::f32;
      args.out = (*w->shape)[0];
      args.in = (*w->shape)[1];
      args.bias = b != nullptr ? bias_f32.data() : nullptr;
      args.bias_dtype = DType::f32;
      args.x = x;
      args.tokens = tokens;
      args.y = y;
      status = impl_->host_device->linear(args);
    }
    if (impl_->trace.enabled())
      impl_->trace.span(impl_->lane_compute, "compute", weight_name, t0, impl_->trace.now_ns());
    if (!status) return std::move(status).with_tensor(weight_name);
    return status;
  }
  detail::LinearArgs args;
  args.weight = w->data;
  args.weight_dtype = w->dtype;
  args.out = (*w->shape)[0];
  args.in = (*w->shape)[1];
  if (b != nullptr && b->shape->size() == 1 && (*b->shape)[0] == args.out) {
    args.bias = b->data;
    args.bias_dtype = b->dtype;
  }
  args.x = x;
  args.tokens = tokens;
  args.y = y;
  const detail::NvtxRange nvtx(detail::NvtxKind::compute, weight_name.c_str());
  const std::uint64_t t0 = impl_->trace.now_ns();
  // A component placed on the CPU computes there whatever the session's device.
  detail::ComputeDevice& device =
      w->device == impl_->device->kind() ? *impl_->device : *impl_->host_device;
  Status status = device.linear(args);
  if (impl_->trace.enabled())
    impl_->trace.span(impl_->lane_compute, "compute", weight_name, t0, impl_->trace.now_ns());
  if (!status) return std::move(status).with_tensor(weight_name);
  return status;
}

Result<void*> Session::allocate_buffer(std::uint64_t bytes) noexcept {
  if (!impl_) return Status(Errc::invalid_argument, "allocate_buffer on a closed session");
  {
    std::lock_guard<std::mutex> lock(impl_->mu);
    if (!impl_->reserve_device(bytes, true)) {
      std::string message = "the device budget has no ";
      message += std::to_string(bytes);
      message += " bytes left for the host's buffer";
      return Status(Errc::out_of_memory, std::move(message))
          .with_rule("runtime.budget.device")
          .with_hint("release handles, or raise the device budget");
    }
  }
  auto memory = impl_->allocate_device(bytes, true, "host buffer", nullptr);
  if (!memory) impl_->device_store.release(bytes);
  return memory;
}

void Session::release_buffer(void* buffer, std::uint64_t bytes) noexcept {
  if (!impl_ || buffer == nullptr) return;
  impl_->device->free(buffer, bytes);
  impl_->device_store.release(bytes);
}

Status Session::upload(void* device_dst, const void* host_src, std::uint64_t bytes) noexcept {
  if (!impl_) return Status(Errc::invalid_argument, "upload on a closed session");
  return impl_->device->copy_to_device(device_dst, host_src, bytes);
}

Status Session::download(void* host_dst, const void* device_src, std::uint64_t bytes) noexcept {
  if (!impl_) return Status(Errc::invalid_argument, "download on a closed session");
  return impl_->device->copy_to_host(host_dst, device_src, bytes);
}

std::string Session::linear_backend() const {
  return impl_ ? impl_->device->linear_backend() : std::string();
}

DeviceKind Session::device() const noexcept {
  return impl_ ? impl_->device->kind() : DeviceKind::cpu;
}

void Session::finish(std::string_view component) noexcept {
  if (impl_) impl_->finish(component);
}

void Session::begin_step(std::uint32_t index) noexcept {
  if (!impl_) return;
  std::lock_guard<std::mutex> lock(impl_->mu);
  impl_->step_index = index;
  impl_->step_start = impl_->trace.now_ns();
  impl_->in_step = true;
  const std::string name = "step " + std::to_string(index);
  impl_->nvtx_step = detail::nvtx_start(detail::NvtxKind::step, name.c_str());
}

void Session::end_step() noexcept {
  if (!impl_) return;
  std::lock_guard<std::mutex> lock(impl_->mu);
  if (!impl_->in_step) return;
  impl_->in_step = false;
  detail::nvtx_end(std::exchange(impl_->nvtx_step, 0));
  impl_->trace.span(impl_->trace.lane("steps"), "step", "step " + std::to_string(impl_->step_index),
                    impl_->step_start, impl_->trace.now_ns(), {{"index", impl_->step_index}});
}

void Session::begin_phase(std::string_view name) noexcept {
  if (!impl_) return;
  end_phase();
  std::lock_guard<std::mutex> lock(impl_->mu);
  impl_->phase_name.assign(name);
  impl_->phase_start = impl_->trace.now_ns();
  impl_->in_phase = true;
}

void Session::end_phase() noexcept {
  if (!impl_) return;
  std::lock_guard<std::mutex> lock(impl_->mu);
  if (!impl_->in_phase) return;
  impl_->in_phase = false;
  impl_->trace.span(impl_->trace.lane("phases"), "phase", impl_->phase_name, impl_->phase_start,
                    impl_->trace.now_ns());
}

Strategy Session::strategy() const {
  if (!impl_) return {};
  std::lock_guard<std::mutex> lock(impl_->mu);
  return impl_->strategy;
}

SessionStats Session::stats() const noexcept {
  SessionStats s;
  if (!impl_) return s;
  Impl& i = *impl_;
  const auto store = [](const detail::MemoryStore& m) {
    return StoreStats{m.in_use(), m.peak(), m.budget()};
  };
  s.device = store(i.device_store);
  s.pinned = store(i.pinned_store);
  s.pageable = store(i.pageable_store);
  s.disk = store(i.disk_store);
  std::lock_guard<std::mutex> lock(i.mu);
  s.load_bytes = i.load_bytes;
  s.load_seconds = i.load_seconds;
  s.staging_peak = i.staging_peak.load();
  s.staging_waits = i.staging_waits.load();
  s.acquires = i.acquires;
  s.prefetch_hits = i.prefetch_hits;
  s.stalls = i.stalls;
  s.stall_seconds = i.stall_seconds;
  s.copies_to_device = i.copies_to_device;
  s.bytes_to_device = i.bytes_to_device;
  s.copies_to_host = i.copies_to_host;
  s.disk_reads = i.disk_reads;
  s.evictions = i.evictions;
  s.evicted_bytes = i.evicted_bytes;
  s.pin_calls = i.pin_calls;
  s.alloc_retries = i.alloc_retries;
  s.alloc_failures = i.alloc_failures;
  s.trimmed_bytes = i.trimmed_bytes;
  s.headroom_shrinks = i.headroom_shrinks;
  s.headroom_overruns = i.headroom_overruns;
  const std::uint64_t limit = i.headroom_limit.load();
  s.headroom_limit = limit == UINT64_MAX ? 0 : limit;
  s.replans = i.replans;
  s.replan_failures = i.replan_failures;
  s.direct_io = i.direct_io_active;
  s.cache_reused = i.cache_reused;
  return s;
}

Status Session::write_trace(std::string_view path) const noexcept {
  if (!impl_) return Status(Errc::invalid_argument, "write_trace on a closed session");
  if (!impl_->trace.enabled()) {
    return Status(Errc::invalid_argument, "this session records no trace")
        .with_rule("runtime.trace")
        .with_hint("open the session with SessionOptions::trace = true");
  }
  return impl_->trace.write_chrome_json(path);
}

void Session::trace_info(std::string_view key, double value) noexcept {
  if (impl_) impl_->trace.set_info_number(key, value);
}

// ---- Acquired ---------------------------------------------------------------------------

Acquired::Acquired() noexcept = default;
Acquired::Acquired(std::unique_ptr<Impl> impl) noexcept : impl_(std::move(impl)) {}
Acquired::Acquired(Acquired&&) noexcept = default;
Acquired& Acquired::operator=(Acquired&& other) noexcept {
  if (this != &other) {
    release();
    impl_ = std::move(other.impl_);
  }
  return *this;
}
Acquired::~Acquired() {
  release();
}

const std::string& Acquired::component() const noexcept {
  static const std::string empty;
  return impl_ ? impl_->component : empty;
}
const std::string& Acquired::module() const noexcept {
  static const std::string empty;
  return impl_ ? impl_->module : empty;
}
const std::vector<TensorView>& Acquired::tensors() const noexcept {
  static const std::vector<TensorView> empty;
  return impl_ && !impl_->released ? impl_->views : empty;
}
const TensorView* Acquired::find(std::string_view name) const noexcept {
  if (!impl_ || impl_->released) return nullptr;
  for (const TensorView& v : impl_->views)
    if (*v.name == name) return &v;
  return nullptr;
}

void Acquired::release() noexcept {
  if (!impl_ || impl_->released) return;
  impl_->released = true;
  Session::Impl& s = *impl_->session;
  for (auto& [p, n] : impl_->scratch) {
    s.device->free(p, n);
    s.device_store.release(n);
  }
  impl_->scratch.clear();
  s.release(impl_->groups);
}

}  // namespace v1
}  // namespace dmem
