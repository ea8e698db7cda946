// The session under memory pressure: trim, live budgets, make_room for the host's own
// out-of-memory, and headroom mode (keep N bytes of the device free for other programs). All of
// them evict idle groups through the residency engine; eviction unmaps at once, so the memory is
// back with the driver (or the system) before the call returns.
#include <algorithm>
#include <chrono>
#include <string>

#include "runtime/session_impl.hpp"

namespace dmem {
inline namespace v1 {

std::string_view pressure_kind_name(PressureKind kind) noexcept {
  switch (kind) {
    case PressureKind::allocation:
      return "allocation";
    case PressureKind::trim:
      return "trim";
    case PressureKind::budget:
      return "budget";
    case PressureKind::make_room:
      return "make_room";
    case PressureKind::headroom:
      return "headroom";
  }
  return "unknown";
}

void Session::Impl::notify(const PressureEvent& event) const noexcept {
  if (options.on_pressure) options.on_pressure(event);
}

std::uint64_t Session::Impl::device_limit() const noexcept {
  return std::min(device_store.limit(), headroom_limit.load());
}

TrimReport Session::Impl::shrink_to(std::uint64_t target, std::uint64_t requested,
                                    PressureKind kind,
                                    std::unique_lock<std::mutex>& lock) noexcept {
  const auto t0 = std::chrono::steady_clock::now();
  const std::uint64_t trace_t0 = trace.now_ns();
  TrimReport report;
  report.requested = requested;
  settle(lock);
  for (const auto& spare : spares) report.freed += spare.second;
  free_spares();
  while (device_store.in_use() > target) {
    const std::int64_t victim = pick_victim(true);
    if (victim < 0) break;
    report.freed += layout.groups[static_cast<std::size_t>(victim)].device_bytes;
    evict(static_cast<std::uint32_t>(victim));
  }
  report.in_use = device_store.in_use();
  std::uint64_t in_groups = 0;
  std::string held_names;
  for (std::uint32_t g = 0; g < groups.size(); ++g) {
    const GroupState& s = groups[g];
    if (s.state != State::resident || layout.groups[g].in_place) continue;
    const std::uint64_t bytes = layout.groups[g].device_bytes;
    in_groups += bytes;
    if (s.pins != 0) {
      report.held_by_handles += bytes;
      if (held_names.size() < 200) {
        if (!held_names.empty()) held_names += ", ";
        held_names += layout.groups[g].name;
      }
    } else if (layout.groups[g].keep) {
      report.kept_by_plan += bytes;
    }
  }
  report.host_buffers = report.in_use > in_groups ? report.in_use - in_groups : 0;
  if (report.in_use > target) {
    std::string why = "freed ";
    why += std::to_string(report.freed);
    why += " bytes; ";
    why += std::to_string(report.in_use - target);
    why += " more were needed but the rest is not idle:";
    if (report.held_by_handles != 0) {
      why += " ";
      why += std::to_string(report.held_by_handles);
      why += " bytes held by acquired modules (";
      why += held_names;
      why += ");";
    }
    if (report.kept_by_plan != 0) {
      why += " ";
      why += std::to_string(report.kept_by_plan);
      why += " bytes kept on the device by the plan (resident weights have no other home);";
    }
    if (report.host_buffers != 0) {
      why += " ";
      why += std::to_string(report.host_buffers);
      why += " bytes of host buffers and upcast scratch;";
    }
    why.pop_back();
    report.reason = std::move(why);
  }
  trimmed_bytes += report.freed;
  report.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  trace.span(lane_host, "pressure", std::string(pressure_kind_name(kind)), trace_t0, trace.now_ns(),
             {{"bytes", report.freed}});
  notify({kind, requested, report.freed, report.complete(), {}});
  cv.notify_all();
  return report;
}

void Session::Impl::sample_headroom() noexcept {
  const std::uint64_t headroom = options.headroom;
  if (headroom == 0) return;
  // Our own use read before the probe: an allocation racing the probe then makes the limit
  // lower, never higher, than it should be.
  const std::uint64_t own = device_store.in_use();
  DeviceMemoryInfo info;
  if (options.memory_probe) {
    info = options.memory_probe();
  } else {
    auto probed = device->memory_info();
    if (!probed) return;  // keep the last limit
    info = probed.value();
  }
  const std::uint64_t available = own > UINT64_MAX - info.free ? UINT64_MAX : own + info.free;
  const std::uint64_t limit = available > headroom ? available - headroom : 0;
  headroom_limit.store(limit);
  if (device_store.in_use() <= limit) return;
  std::unique_lock<std::mutex> lock(mu);
  const std::uint64_t in_use = device_store.in_use();
  if (in_use <= limit) return;
  const TrimReport report = shrink_to(limit, in_use - limit, PressureKind::headroom, lock);
  if (report.freed != 0) headroom_shrinks += 1;
}

void Session::Impl::start_watcher() noexcept {
  if (options.headroom == 0 || options.headroom_interval_ms == 0) return;
  watcher = std::thread([this] {
    const auto interval = std::chrono::milliseconds(options.headroom_interval_ms);
    std::unique_lock<std::mutex> lock(watch_mu);
    while (!watch_cv.wait_for(lock, interval, [&] { return watch_stop; })) {
      lock.unlock();
      sample_headroom();
      lock.lock();
    }
  });
}

void Session::Impl::stop_watcher() noexcept {
  {
    std::lock_guard<std::mutex> lock(watch_mu);
    watch_stop = true;
  }
  watch_cv.notify_all();
  if (watcher.joinable()) watcher.join();
}

// ---- public -------------------------------------------------------------------------------

TrimReport Session::trim(std::uint64_t bytes) noexcept {
  TrimReport report;
  report.requested = bytes;
  if (!impl_) {
    report.reason = "trim on a closed session";
    return report;
  }
  std::unique_lock<std::mutex> lock(impl_->mu);
  const std::uint64_t in_use = impl_->device_store.in_use();
  const std::uint64_t target = bytes >= in_use ? 0 : in_use - bytes;
  report = impl_->shrink_to(target, bytes, PressureKind::trim, lock);
  // kAll asks for every idle weight, not for more than the session holds.
  if (bytes == kAll &&
      report.in_use == report.held_by_handles + report.kept_by_plan + report.host_buffers)
    report.reason.clear();
  return report;
}

Result<TrimReport> Session::set_budget(StoreKind store, std::uint64_t bytes) noexcept {
  if (!impl_) return Status(Errc::invalid_argument, "set_budget on a closed session");
  Impl& i = *impl_;
  switch (store) {
    case StoreKind::device: {
      std::unique_lock<std::mutex> lock(i.mu);
      i.device_store.set_budget(bytes);
      i.trace.set_info_number("budget.device", static_cast<double>(bytes));
      const std::uint64_t in_use = i.device_store.in_use();
      const std::uint64_t target = bytes == 0 ? UINT64_MAX : bytes;
      TrimReport report;
      if (in_use <= target) {
        // Raised (or still above what is used): residency grows again over the next steps.
        report.in_use = in_use;
        i.notify({PressureKind::budget, 0, 0, true, {}});
      } else {
        report = i.shrink_to(target, in_use - target, PressureKind::budget, lock);
      }
      const std::uint64_t need = detail::device_need(i.layout);
      if (!i.options.replan || bytes == 0 || need <= bytes) {
        i.pending_replan.clear();  // raised back: a deferred re-plan is no longer needed
        return report;
      }
      // Evicting cannot make the plan fit: its kept weights plus its largest moving unit are
      // over the budget. Move to another plan now, or at the next acquire once handles go.
      std::string why = "the device budget was cut to ";
      why += std::to_string(bytes);
      why += " bytes, below the ";
      why += std::to_string(need);
      why += " the plan needs (its resident weights and largest moving unit)";
      bool deferred = false;
      const std::uint64_t before = i.device_store.in_use();
      DMEM_TRY(i.replan_or_defer(std::move(why), deferred, lock));
      report.replan_pending = deferred;
      report.replanned = !deferred;
      if (!deferred) {
        report.in_use = i.device_store.in_use();
        report.freed += before > report.in_use ? before - report.in_use : 0;
        if (report.in_use <= target) report.reason.clear();
      }
      return report;
    }
    case StoreKind::pinned:
    case StoreKind::pageable: {
      detail::MemoryStore& s = store == StoreKind::pinned ? i.pinned_store : i.pageable_store;
      if (bytes != 0 && bytes < s.in_use() && i.options.replan) {
        // Homes in host RAM are filled at open: a smaller footprint needs a plan that parks
        // less there (pinned first, then pageable, then the disk tier, as the planner ranks).
        std::unique_lock<std::mutex> lock(i.mu);
        s.set_budget(bytes);
        std::string why = "the ";
        why += store_kind_name(store);
        why += " budget was cut to ";
        why += std::to_string(bytes);
        why += " bytes, below the ";
        why += std::to_string(s.in_use());
        why += " the plan parks there";
        bool deferred = false;
        DMEM_TRY(i.replan_or_defer(std::move(why), deferred, lock));
        TrimReport report;
        report.replan_pending = deferred;
        report.replanned = !deferred;
        report.in_use = i.device_store.in_use();
        return report;
      }
      if (bytes != 0 && bytes < s.in_use()) {
        std::string message = "the ";
        message += store_kind_name(store);
        message += " store holds ";
        message += std::to_string(s.in_use());
        message += " bytes of parked weights, more than the new budget of ";
        message += std::to_string(bytes);
        std::string rule = "runtime.budget.";
        rule += store_kind_name(store);
        return Status(Errc::out_of_memory, std::move(message))
            .with_rule(std::move(rule))
            .with_hint(
                "a plan that parks fewer weights there is needed: open a new session with it");
      }
      s.set_budget(bytes);
      TrimReport report;
      report.in_use = i.device_store.in_use();
      return report;
    }
    case StoreKind::disk:
      break;
  }
  return Status(Errc::invalid_argument, "the disk store has no budget")
      .with_rule("runtime.budget.disk")
      .with_hint("set the device, pinned or pageable budget");
}

TrimReport Session::make_room(std::uint64_t bytes) noexcept {
  TrimReport report;
  report.requested = bytes;
  if (!impl_) {
    report.reason = "make_room on a closed session";
    return report;
  }
  Impl& i = *impl_;
  std::unique_lock<std::mutex> lock(i.mu);
  // Free `bytes` of memory, and leave room for them within the limit in case the host
  // allocates through allocate_buffer().
  const std::uint64_t in_use = i.device_store.in_use();
  const std::uint64_t limit = i.device_limit();
  std::uint64_t target = bytes >= in_use ? 0 : in_use - bytes;
  if (limit != UINT64_MAX) target = std::min(target, limit > bytes ? limit - bytes : 0);
  return i.shrink_to(target, bytes, PressureKind::make_room, lock);
}

}  // namespace v1
}  // namespace dmem
