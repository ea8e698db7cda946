// The residency engine: makes groups resident on acquire, prefetches the next ones in execution
// order on a copy worker, drops groups after use or at phase ends, and evicts idle groups when
// the device budget needs room. Offloading never copies back: a group's home (pinned or pageable
// region, checkpoint file, cache file) still holds its bytes, so eviction only frees memory; the
// same eviction makes a failed device allocation succeed on retry (another program took memory).
#include <algorithm>
#include <chrono>
#include <string>

#include "runtime/nvtx_range.hpp"
#include "runtime/session_impl.hpp"

namespace dmem {
inline namespace v1 {

using detail::TensorSlot;

Status Session::Impl::read_home(const TensorSlot& slot, void* dst) noexcept {
  const std::uint64_t n = slot.stored_bytes;
  switch (slot.home) {
    case StoreKind::pinned:
      return device->copy_to_device(dst, pinned_region.data() + slot.home_offset, n);
    case StoreKind::pageable:
      return device->copy_to_device(dst, pageable_region.data() + slot.home_offset, n);
    case StoreKind::disk: {
      if (device->host_addressable()) {
        if (slot.cast || slot.quantized) return cache_reader.read_at(dst, n, slot.home_offset);
        return sources[slot.component]->read(*slot.info, dst);
      }
      // Through host memory the device can copy from.
      auto staging = detail::HostRegion::allocate(n, "staging");
      if (!staging) return staging.status();
      Status status = (slot.cast || slot.quantized)
                          ? cache_reader.read_at(staging->data(), n, slot.home_offset)
                          : sources[slot.component]->read(*slot.info, staging->data());
      if (status) status = device->copy_to_device(dst, staging->data(), n);
      return status;
    }
    case StoreKind::device:
      break;
  }
  return Status(Errc::internal, "a weight kept on the device was parked")
      .with_rule("runtime.state");
}

Status Session::Impl::onload(std::uint32_t g, std::uint32_t lane, bool urgent) noexcept {
  const auto& group = layout.groups[g];
  const detail::NvtxRange nvtx(detail::NvtxKind::copy, group.name.c_str());
  const std::uint64_t t0 = trace.now_ns();
  auto memory = allocate_device(group.device_bytes, urgent, group.name, nullptr);
  if (!memory) return memory.status();
  // Mapping device memory is the driver's work, not the copy's: apart in the timeline.
  const std::uint64_t t_copy = trace.now_ns();
  trace.span(lane, "allocate", group.name, t0, t_copy, {{"bytes", group.device_bytes}});
  bool from_disk = false;
  // Copies from host homes are queued together and waited for once per group.
  Status status;
  for (std::uint32_t ti : group.tensors) {
    const TensorSlot& slot = layout.tensors[ti];
    void* dst = static_cast<unsigned char*>(memory.value()) + slot.group_offset;
    if (slot.home == StoreKind::pinned)
      status = device->copy_to_device_async(dst, pinned_region.data() + slot.home_offset,
                                            slot.stored_bytes);
    else if (slot.home == StoreKind::pageable)
      status = device->copy_to_device_async(dst, pageable_region.data() + slot.home_offset,
                                            slot.stored_bytes);
    else
      status = read_home(slot, dst);
    if (!status) break;
    from_disk = from_disk || slot.home == StoreKind::disk;
  }
  const Status landed = device->wait_copies();
  if (status && !landed) status = landed;
  if (!status) {
    device->free(memory.value(), group.device_bytes);
    return status;
  }
  trace.span(lane, "copy", group.name, t_copy, trace.now_ns(), {{"bytes", group.device_bytes}});
  std::lock_guard<std::mutex> lock(mu);
  groups[g].memory = memory.value();
  copies_to_device += 1;
  bytes_to_device += group.device_bytes;
  if (from_disk) disk_reads += 1;
  return Status::ok();
}

void Session::Impl::evict(std::uint32_t g, bool keep_spare) noexcept {
  GroupState& state = groups[g];
  const auto& group = layout.groups[g];
  constexpr std::size_t kMaxSpares = 2;
  if (keep_spare && spares.size() < kMaxSpares) {
    spares.emplace_back(state.memory, group.device_bytes);
  } else {
    const std::uint64_t t0 = trace.now_ns();
    device->free(state.memory, group.device_bytes);
    trace.span(lane_host, "free", group.name, t0, trace.now_ns(), {{"bytes", group.device_bytes}});
    device_store.release(group.device_bytes);
  }
  state.memory = nullptr;
  state.state = State::parked;
  state.prefetched = false;
  evictions += 1;
  evicted_bytes += group.device_bytes;
  trace.instant(lane_host, "evict", group.name, {{"bytes", group.device_bytes}});
}

void Session::Impl::settle(std::unique_lock<std::mutex>& lock) noexcept {
  for (std::uint32_t g : queue) groups[g].queued = false;
  queue.clear();
  const auto loading = [&] {
    for (const GroupState& s : groups)
      if (s.state == State::loading) return true;
    return false;
  };
  while (loading()) cv.wait(lock);
}

void Session::Impl::free_spares() noexcept {
  for (const auto& [memory, bytes] : spares) {
    device->free(memory, bytes);
    device_store.release(bytes);
  }
  spares.clear();
}

std::int64_t Session::Impl::pick_victim(bool urgent) const noexcept {
  std::int64_t victim = -1;
  const auto better = [&](std::uint32_t g) {
    if (victim < 0) return true;
    const GroupState& v = groups[static_cast<std::size_t>(victim)];
    const GroupState& s = groups[g];
    // Prefetched groups are needed soonest: they go last.
    if (s.prefetched != v.prefetched) return !s.prefetched;
    return s.last_use < v.last_use;
  };
  for (std::uint32_t g = 0; g < groups.size(); ++g) {
    const GroupState& s = groups[g];
    if (s.state != State::resident || s.pins != 0 || layout.groups[g].keep) continue;
    if (s.prefetched && !urgent) continue;
    if (better(g)) victim = g;
  }
  return victim;
}

bool Session::Impl::reserve_device(std::uint64_t bytes, bool urgent) noexcept {
  // A spare of this size is the room itself, already counted. Any other size: the spares go
  // first, so they never add to a peak (the store holds what it held without them).
  for (auto it = spares.begin(); it != spares.end(); ++it) {
    if (it->second != bytes) continue;
    claimed.push_back(*it);
    spares.erase(it);
    return true;
  }
  free_spares();
  while (true) {
    if (device_store.try_reserve_within(bytes, device_limit())) return true;
    const std::int64_t victim = pick_victim(urgent);
    if (victim < 0) break;
    evict(static_cast<std::uint32_t>(victim));
  }
  // Headroom is kept for other programs only as far as the weights in use allow: what an
  // acquire needs now goes past it (within the budget) rather than fail the host's step.
  if (urgent && headroom_limit.load() != UINT64_MAX && device_store.try_reserve(bytes)) {
    headroom_overruns += 1;
    return true;
  }
  return false;
}

Result<void*> Session::Impl::allocate_device(std::uint64_t bytes, bool urgent,
                                             std::string_view what,
                                             std::unique_lock<std::mutex>* lock) noexcept {
  {
    std::unique_lock<std::mutex> own;
    if (lock == nullptr) own = std::unique_lock<std::mutex>(mu);
    for (auto it = claimed.begin(); it != claimed.end(); ++it) {
      if (it->second != bytes) continue;
      void* memory = it->first;
      claimed.erase(it);
      return memory;
    }
  }
  std::uint64_t freed = 0;
  for (std::uint32_t attempt = 0;; ++attempt) {
    auto memory = device->allocate(bytes);
    if (memory || memory.status().code() != Errc::out_of_memory) {
      if (memory && attempt > 0) {
        std::unique_lock<std::mutex> own;
        if (lock == nullptr) own = std::unique_lock<std::mutex>(mu);
        alloc_retries += 1;
        notify({PressureKind::allocation, bytes, freed, true, what});
      }
      return memory;
    }
    // The device is out of memory although the budget allowed it: someone else holds it. Give
    // back idle weights, by the same policy as the budget, and try again.
    std::unique_lock<std::mutex> own;
    if (lock == nullptr) own = std::unique_lock<std::mutex>(mu);
    if (!spares.empty()) {
      for (const auto& spare : spares) freed += spare.second;
      free_spares();
      continue;
    }
    const std::int64_t victim = pick_victim(urgent);
    if (victim < 0) {
      alloc_failures += 1;
      notify({PressureKind::allocation, bytes, freed, false, what});
      Status status = memory.status();
      return std::move(status).with_hint(
          "the device is out of memory with every idle weight evicted: other programs or the "
          "host's own buffers hold it; free some (Session::trim/make_room in another session) "
          "or plan for less device memory");
    }
    freed += layout.groups[static_cast<std::size_t>(victim)].device_bytes;
    evict(static_cast<std::uint32_t>(victim));
  }
}

void Session::Impl::record_order(std::uint32_t c, std::uint32_t g) noexcept {
  Order& order = orders[c];
  if (order.complete) return;
  if (order.position[g] >= 0) {
    order.complete = true;  // the first repeat ends the first pass
    return;
  }
  order.position[g] = static_cast<std::int64_t>(order.sequence.size());
  order.sequence.push_back(g);
}

void Session::Impl::schedule_prefetch(std::uint32_t c, std::uint32_t g) noexcept {
  const auto& cl = layout.components[c];
  if (!cl.prefetch || cl.prefetch_depth == 0) return;
  const Order& order = orders[c];
  // The recorded order once the first pass is over; the natural order before.
  const std::vector<std::uint32_t>& seq = order.complete ? order.sequence : cl.groups;
  const auto it = std::find(seq.begin(), seq.end(), g);
  if (it == seq.end()) return;
  std::size_t pos = static_cast<std::size_t>(it - seq.begin());
  // The next `prefetch_depth` blocks. Small groups between them (norms, embeddings, the
  // projections around the blocks) ride along without counting, or a step's first block would
  // wait behind them for its copy.
  std::uint64_t largest = 0;
  for (std::uint32_t other : cl.groups)
    largest = std::max(largest, layout.groups[other].device_bytes);
  std::vector<std::uint32_t> window;
  std::uint32_t counted = 0;
  for (std::size_t k = 1; k < seq.size() && counted < cl.prefetch_depth; ++k) {
    const std::uint32_t next = seq[(pos + k) % seq.size()];
    window.push_back(next);
    if (layout.groups[next].device_bytes * 4 >= largest) ++counted;
  }
  // A prefetched group outside the window was not used when expected (the host changed its
  // order, or acquired it before the copy started): drop it rather than let it sit there.
  for (std::uint32_t other : cl.groups) {
    const GroupState& o = groups[other];
    if (other != g && o.state == State::resident && o.prefetched && o.pins == 0 &&
        std::find(window.begin(), window.end(), other) == window.end())
      evict(other);
  }
  bool queued_any = false;
  for (const std::uint32_t next : window) {
    GroupState& s = groups[next];
    if (s.state != State::parked || s.queued || layout.groups[next].in_place) continue;
    s.queued = true;
    queue.push_back(next);
    queued_any = true;
  }
  if (queued_any) cv.notify_all();
}

void Session::Impl::worker_loop() noexcept {
  std::unique_lock<std::mutex> lock(mu);
  while (true) {
    cv.wait(lock, [&] { return stopping || !queue.empty(); });
    if (stopping) return;
    const std::uint32_t g = queue.front();
    queue.pop_front();
    GroupState& s = groups[g];
    s.queued = false;
    if (s.state != State::parked) continue;
    if (!reserve_device(layout.groups[g].device_bytes, false)) continue;  // no room: skip
    s.state = State::loading;
    lock.unlock();
    Status status = onload(g, lane_copy, false);
    lock.lock();
    if (status) {
      s.state = State::resident;
      s.prefetched = true;
      s.last_use = ++clock;
    } else {
      device_store.release(layout.groups[g].device_bytes);
      s.state = State::parked;  // the acquire that needs it will load it and report the error
    }
    cv.notify_all();
  }
}

void Session::Impl::start_worker() noexcept {
  bool any = false;
  for (const auto& c : layout.components) any = any || c.prefetch;
  if (any) worker = std::thread([this] { worker_loop(); });
}

void Session::Impl::stop_worker() noexcept {
  {
    std::lock_guard<std::mutex> lock(mu);
    stopping = true;
  }
  cv.notify_all();
  if (worker.joinable()) worker.join();
}

Result<std::unique_ptr<Acquired::Impl>> Session::Impl::acquire(std::string_view component,
                                                               std::string_view module) noexcept {
  // The layout is read under the lock: a re-plan may replace it between acquires.
  std::unique_lock<std::mutex> lock(mu);
  while (replanning) cv.wait(lock);
  std::uint32_t c = 0;
  for (; c < layout.components.size(); ++c)
    if (layout.components[c].name == component) break;
  if (c == layout.components.size()) {
    return Status(Errc::not_found, "no component '" + std::string(component) + "' in this session")
        .with_rule("runtime.component")
        .with_hint("acquire one of the strategy's components");
  }
  const auto& cl = layout.components[c];
  const std::vector<std::uint32_t>* tensors = nullptr;
  std::vector<std::uint32_t> all;
  if (module.empty()) {
    for (const auto& unit : cl.units) {
      const auto& ut = cl.unit_tensors.at(unit);
      all.insert(all.end(), ut.begin(), ut.end());
    }
    tensors = &all;
  } else if (auto u = cl.unit_tensors.find(std::string(module)); u != cl.unit_tensors.end()) {
    tensors = &u->second;
  } else if (auto l = cl.leaf_tensors.find(std::string(module)); l != cl.leaf_tensors.end()) {
    tensors = &l->second;
  } else {
    return Status(Errc::not_found,
                  "component '" + cl.name + "' has no module '" + std::string(module) + "'")
        .with_rule("runtime.module")
        .with_hint("acquire a unit listed by Session::modules() or a leaf inside one");
  }
  std::vector<std::uint32_t> needed;
  if (cl.whole) {
    needed = cl.groups;
  } else {
    for (std::uint32_t ti : *tensors) {
      const std::uint32_t g = layout.tensors[ti].group;
      if (std::find(needed.begin(), needed.end(), g) == needed.end()) needed.push_back(g);
    }
  }

  auto handle = std::make_unique<Acquired::Impl>();
  handle->component = cl.name;
  handle->module = std::string(module);
  const detail::NvtxRange nvtx(detail::NvtxKind::acquire, handle->module.c_str());
  const auto t0 = std::chrono::steady_clock::now();
  const std::uint64_t trace_t0 = trace.now_ns();
  bool stalled = false;
  acquires += 1;
  for (std::uint32_t g : needed) {
    if (!layout.groups[g].in_place) record_order(c, g);
    groups[g].pins += 1;
    handle->groups.push_back(g);
  }
  const auto unpin_all = [&] {
    for (std::uint32_t g : handle->groups) groups[g].pins -= 1;
    handle->groups.clear();
    cv.notify_all();
  };
  const auto loading_any = [&] {
    for (const GroupState& other : groups)
      if (other.state == State::loading) return true;
    return false;
  };
  for (std::uint32_t g : needed) {
    GroupState& s = groups[g];
    if (layout.groups[g].in_place) continue;
    bool reserved = false;
    while (true) {
      while (s.state == State::loading) {
        stalled = true;
        cv.wait(lock);
      }
      if (s.state == State::resident) break;
      reserved = reserve_device(layout.groups[g].device_bytes, true);
      // Room held by a copy in flight (a prefetch, another thread's acquire) becomes evictable
      // when the copy lands: under a tight budget, wait for it rather than fail.
      if (reserved || !loading_any()) break;
      stalled = true;
      cv.wait(lock);
    }
    if (s.state == State::resident) {
      if (s.prefetched) prefetch_hits += 1;
      s.prefetched = false;
    } else {
      stalled = true;
      if (!reserved) {
        unpin_all();
        std::string message = "the device budget cannot hold '";
        message += layout.groups[g].name;
        message += "' (";
        message += std::to_string(layout.groups[g].device_bytes);
        message += " bytes) beside what other handles keep (";
        message += std::to_string(device_store.in_use());
        message += " of ";
        message += std::to_string(device_store.budget());
        message += " bytes in use)";
        return Status(Errc::out_of_memory, std::move(message))
            .with_rule("runtime.budget.device")
            .with_hint("release handles sooner, or raise the device budget");
      }
      s.state = State::loading;
      lock.unlock();
      Status status = onload(g, lane_host, true);
      lock.lock();
      if (!status) {
        device_store.release(layout.groups[g].device_bytes);
        s.state = State::parked;
        unpin_all();
        return status;
      }
      s.state = State::resident;
      cv.notify_all();  // trim() and finish() wait for loads in flight
    }
    s.last_use = ++clock;
  }
  if (!needed.empty() && !cl.whole) schedule_prefetch(c, needed.back());
  if (stalled) {
    stalls += 1;
    stall_seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    trace.span(lane_host, "wait", handle->module, trace_t0, trace.now_ns());
  }

  // Views; cast weights are upcast into scratch that the handle owns.
  for (std::uint32_t ti : *tensors) {
    const TensorSlot& slot = layout.tensors[ti];
    const auto& group = layout.groups[slot.group];
    TensorView view;
    view.name = &slot.info->name;
    view.shape = &slot.info->shape;
    view.device = group.in_place ? DeviceKind::cpu : device->kind();
    view.dtype = slot.stored_dtype;
    view.nbytes = slot.stored_bytes;
    view.packed = slot.quantized;
    if (group.in_place) {
      view.data = pageable_region.data() + slot.home_offset;
    } else {
      view.data = static_cast<const unsigned char*>(groups[slot.group].memory) + slot.group_offset;
    }
    if (slot.cast) {
      const std::uint64_t elems = slot.info->elements();
      const std::uint64_t bytes = dtype_bytes(cl.compute_dtype, elems).value_or(0);
      Result<void*> memory = Status(Errc::out_of_memory, "no room for the upcast copy");
      if (reserve_device(bytes, true)) {
        memory = allocate_device(bytes, true, slot.info->name, &lock);
        if (!memory) device_store.release(bytes);
      }
      if (!memory) {
        for (auto& [p, n] : handle->scratch) {
          device->free(p, n);
          device_store.release(n);
        }
        unpin_all();
        return Status(Errc::out_of_memory, "no device room to upcast '" + slot.info->name +
                                               "' to " + std::string(dtype_name(cl.compute_dtype)))
            .with_rule("runtime.budget.device")
            .with_hint("raise the device budget by the largest cast tensor");
      }
      handle->scratch.emplace_back(memory.value(), bytes);
      Status status =
          device->cast(slot.stored_dtype, view.data, cl.compute_dtype, memory.value(), elems);
      if (!status) {
        for (auto& [p, n] : handle->scratch) {
          device->free(p, n);
          device_store.release(n);
        }
        unpin_all();
        return status;
      }
      view.data = memory.value();
      view.dtype = cl.compute_dtype;
      view.nbytes = bytes;
    }
    handle->views.push_back(view);
  }
  live_handles += 1;  // a re-plan waits until it is released
  return handle;
}

void Session::Impl::release(const std::vector<std::uint32_t>& released) noexcept {
  std::lock_guard<std::mutex> lock(mu);
  live_handles -= 1;
  for (std::uint32_t g : released) {
    GroupState& s = groups[g];
    s.pins -= 1;
    if (s.pins == 0 && s.state == State::resident && layout.groups[g].drop_after_use)
      evict(g, true);
  }
  cv.notify_all();
}

void Session::Impl::finish(std::string_view component) noexcept {
  std::unique_lock<std::mutex> lock(mu);
  const auto of_component = [&](std::uint32_t g) {
    return layout.components[layout.groups[g].component].name == component;
  };
  // Prefetches of this component are no longer wanted; one in flight is waited for.
  for (auto it = queue.begin(); it != queue.end();) {
    if (of_component(*it)) {
      groups[*it].queued = false;
      it = queue.erase(it);
    } else {
      ++it;
    }
  }
  for (std::uint32_t g = 0; g < groups.size(); ++g)
    while (of_component(g) && groups[g].state == State::loading) cv.wait(lock);
  for (std::uint32_t g = 0; g < groups.size(); ++g) {
    const auto& group = layout.groups[g];
    if (layout.components[group.component].name != component || group.keep) continue;
    if (groups[g].state == State::resident && groups[g].pins == 0) evict(g);
  }
  free_spares();
  cv.notify_all();
}

}  // namespace v1
}  // namespace dmem
