// Re-planning: when evicting is not enough (a device budget cut below what the plan needs, an
// allocation that fails with nothing idle left), the session asks the planner again with the
// device memory it may use now and switches to the best plan that fits. The switch happens
// between acquires only (no handle, no acquire in flight), keeps the storage of every component
// (so the weights' bytes are the same and outputs do not change), moves weights from where they
// are in memory to their new homes, keeps device groups whose home stays the device, and reads
// from the checkpoint or cache file only what is in no memory. Everything new is built beside
// the old plan and committed at the end: a failure midway leaves the old plan whole.
#include <algorithm>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

#include "dmem/units.hpp"
#include "runtime/fault_injection.hpp"
#include "runtime/session_impl.hpp"

namespace dmem {
inline namespace v1 {
namespace {

using detail::FaultSite;
using detail::GroupLayout;
using detail::ResidencyLayout;
using detail::TensorSlot;

// The planner's plan restricted to the session's components, in the session's order; empty when
// it lacks one of them or changes a component's storage (a re-plan never re-transforms weights).
Strategy fit_to_session(const Strategy& current, const Strategy& planned) {
  Strategy out;
  out.vae_tiling = planned.vae_tiling;
  out.vae_slicing = planned.vae_slicing;
  for (const ComponentStrategy& cs : current.components) {
    const ComponentStrategy* p = planned.find(cs.component);
    const bool same_storage =
        p != nullptr && p->storage.kind == cs.storage.kind &&
        p->storage.compute_dtype == cs.storage.compute_dtype &&
        (cs.storage.kind != StorageKind::layerwise_cast ||
         p->storage.cast_dtype == cs.storage.cast_dtype) &&
        (cs.storage.kind != StorageKind::quantized ||
         (p->storage.quantizer == cs.storage.quantizer && p->storage.params == cs.storage.params));
    if (!same_storage) return {};
    ComponentStrategy keep = *p;
    keep.storage = cs.storage;  // compared above; the session's quantizer instances stay valid
    out.components.push_back(std::move(keep));
  }
  return out;
}

bool same_placements(const Strategy& a, const Strategy& b) {
  return strategy_to_json(a, -1) == strategy_to_json(b, -1);
}

// True when the tensors whose home is `store` and their offsets are the same in both layouts, so
// the region holding them can be kept as it is.
bool same_homes(const ResidencyLayout& a, const ResidencyLayout& b, StoreKind store) {
  for (std::size_t i = 0; i < a.tensors.size(); ++i) {
    const bool in_a = a.tensors[i].home == store;
    const bool in_b = b.tensors[i].home == store;
    if (in_a != in_b || (in_a && a.tensors[i].home_offset != b.tensors[i].home_offset))
      return false;
  }
  return true;
}

// The cache file holds transformed disk-tier weights at offsets fixed by the layout.
bool same_cache(const ResidencyLayout& a, const ResidencyLayout& b) {
  for (std::size_t i = 0; i < a.tensors.size(); ++i) {
    const TensorSlot& x = a.tensors[i];
    const TensorSlot& y = b.tensors[i];
    const bool in_a = x.home == StoreKind::disk && (x.cast || x.quantized);
    const bool in_b = y.home == StoreKind::disk && (y.cast || y.quantized);
    if (in_b && (!in_a || x.home_offset != y.home_offset)) return false;
  }
  return true;
}

std::uint64_t disk_bytes(const ResidencyLayout& layout) {
  std::uint64_t on_disk = layout.cache_bytes;
  for (const TensorSlot& slot : layout.tensors) {
    const auto kind = layout.components[slot.component].placement.kind;
    if (slot.home == StoreKind::disk && !slot.cast && !slot.quantized &&
        kind != PlacementKind::dropped)
      on_disk += slot.stored_bytes;
  }
  return on_disk;
}

std::string describe_closest(const PlanReport& report) {
  if (!report.closest) return "no candidate breaks budgets only";
  std::string out = "the closest plan is ";
  out += strategy_summary(report.closest->strategy);
  for (const BudgetNeed& b : report.closest->budgets) {
    if (b.need <= b.usable) continue;
    out += "; ";
    out += b.rule;
    out += " needs ";
    out += format_bytes(b.need);
    out += " of ";
    out += format_bytes(b.usable);
    out += " usable";
  }
  return out;
}

}  // namespace

bool Session::Impl::quiet() const noexcept {
  if (live_handles != 0) return false;
  for (const GroupState& s : groups)
    if (s.pins != 0) return false;
  return true;
}

bool Session::Impl::plan_fits() const noexcept {
  const std::uint64_t limit = device_store.limit();
  if (limit != UINT64_MAX && detail::device_need(layout) > limit) return false;
  if (pinned_store.budget() != 0 && layout.pinned_bytes > pinned_store.budget()) return false;
  return pageable_store.budget() == 0 || layout.pageable_bytes <= pageable_store.budget();
}

Status Session::Impl::replan_or_defer(std::string reason, bool& deferred,
                                      std::unique_lock<std::mutex>& lock) noexcept {
  deferred = !quiet();
  if (deferred) {
    pending_replan = std::move(reason);
    return Status::ok();
  }
  pending_replan.clear();
  return replan(std::move(reason), lock);
}

Status Session::Impl::replan_pending() noexcept {
  std::unique_lock<std::mutex> lock(mu);
  if (pending_replan.empty() || !quiet()) return Status::ok();
  // Still needed? The budget may have been raised since.
  if (plan_fits()) {
    pending_replan.clear();
    return Status::ok();
  }
  std::string reason = std::move(pending_replan);
  pending_replan.clear();
  return replan(std::move(reason), lock);
}

Status Session::Impl::replan(std::string reason, std::unique_lock<std::mutex>& lock) noexcept {
  if (!options.replan) {
    return Status(Errc::out_of_memory, reason)
        .with_rule("runtime.replan.off")
        .with_hint("set SessionOptions::replan to move to another plan, or raise the budget");
  }
  const ReplanOptions& ro = *options.replan;
  // Acquires wait until the switch is over: waiting below for copies in flight lets go of the
  // lock, and an acquire starting then would pin groups of the layout being replaced.
  struct Flag {
    Impl& impl;
    explicit Flag(Impl& i) : impl(i) { impl.replanning = true; }
    ~Flag() {
      impl.replanning = false;
      impl.cv.notify_all();
    }
  } const flag(*this);
  const auto fail = [&](Status status) {
    replan_failures += 1;
    trace.instant(lane_host, "pressure", "replan failed");
    return status;
  };
  // Nothing moves while the plan changes: queued prefetches go, copies in flight land, and idle
  // groups are evicted (they would be anyway, and the measurement below then sees their room).
  settle(lock);
  for (std::uint32_t g = 0; g < groups.size(); ++g)
    if (groups[g].state == State::resident && groups[g].pins == 0 && !layout.groups[g].keep)
      evict(g);
  free_spares();  // sized for the old layout's groups

  // The device memory usable now: the budget (and headroom limit), and what the device has.
  std::uint64_t limit = device_limit();
  DeviceMemoryInfo info;
  bool probed = false;
  if (options.memory_probe) {
    info = options.memory_probe();
    probed = true;
  } else if (auto m = device->memory_info()) {
    info = m.value();
    probed = true;
  }
  if (probed) limit = std::min(limit, device_store.in_use() + info.free);

  // The planner counts a GPU's whole memory (activations, workspace, context) where the device
  // store counts weights and the host's buffers: give it the limit plus what the current plan's
  // estimate needs beside its weights, so that its choice leaves the same room for those.
  if (ro.hardware.gpus.empty()) {
    return fail(Status(Errc::unsupported, "re-planning needs the GPU the plan was made for")
                    .with_rule("runtime.replan.hardware")
                    .with_hint("give ReplanOptions::hardware with the GPU of the plan"));
  }
  std::uint64_t beside_weights = 0;
  if (auto est = estimate(model, strategy, ro.hardware, ro.workload)) {
    for (const PhaseEstimate& pe : est->phases)
      beside_weights =
          std::max(beside_weights, pe.vram_activations + pe.vram_workspace + pe.vram_reserve);
  }
  Hardware hw = ro.hardware;
  const std::uint64_t vram = limit == UINT64_MAX ? hw.gpus[0].vram_total : limit + beside_weights;
  for (GpuSpec& g : hw.gpus) {
    g.vram_total = vram;
    g.vram_free = vram;
  }
  // Host RAM budgets are checked below with the stores' exact figures (the planner's RAM figures
  // add the process and the staging buffers, which the stores do not hold). Every viable plan is
  // a candidate: one that another dominates in speed (a disk tier) may be the only one that fits.
  PlanOptions plan_options = ro.plan;
  plan_options.prune = false;
  auto report = make_plans(model, hw, ro.workload, plan_options);
  if (!report) return fail(report.status());

  std::vector<const QuantizerInstance*> qs(quantizers.size(), nullptr);
  for (std::size_t i = 0; i < quantizers.size(); ++i)
    if (quantizers[i].valid()) qs[i] = &quantizers[i];
  std::optional<Strategy> chosen;
  std::optional<ResidencyLayout> next;
  std::string closest;  // the runnable plan that missed by the least, in the runtime's figures
  double closest_ratio = 0;
  const auto consider = [&](const Strategy& s, const char* store, std::uint64_t need,
                            std::uint64_t budget) {
    const double ratio =
        static_cast<double>(need) / static_cast<double>(std::max<std::uint64_t>(budget, 1));
    if (!closest.empty() && ratio >= closest_ratio) return;
    closest_ratio = ratio;
    closest = "the closest plan is ";
    closest += strategy_summary(s);
    closest += ", which needs ";
    closest += format_bytes(need);
    closest += " of ";
    closest += store;
    closest += " memory (";
    closest += format_bytes(budget);
    closest += " allowed)";
  };
  for (const Plan& plan : report->plans) {
    Strategy s = fit_to_session(strategy, plan.strategy);
    if (s.components.empty() || same_placements(s, strategy)) continue;
    auto l = detail::make_layout(model, s, qs, &prequant);
    if (!l || l->tensors.size() != layout.tensors.size()) continue;
    // The runtime's own figures decide: the planner's estimate may round differently.
    if (limit != UINT64_MAX && detail::device_need(*l) > limit) {
      consider(s, "device", detail::device_need(*l), limit);
      continue;
    }
    if (pinned_store.budget() != 0 && l->pinned_bytes > pinned_store.budget()) {
      consider(s, "pinned", l->pinned_bytes, pinned_store.budget());
      continue;
    }
    if (pageable_store.budget() != 0 && l->pageable_bytes > pageable_store.budget()) {
      consider(s, "pageable", l->pageable_bytes, pageable_store.budget());
      continue;
    }
    if (l->cache_bytes != 0 && !same_cache(layout, *l)) continue;
    chosen = std::move(s);
    next = std::move(l.value());
    break;
  }
  if (!chosen) {
    std::string message = reason;
    message += "; no plan keeping the same storage fits the ";
    message += limit == UINT64_MAX ? std::string("device") : format_bytes(limit);
    message += " usable now, so the session stays at its plan (";
    message += strategy_summary(strategy);
    message += ")";
    return fail(Status(Errc::out_of_memory, std::move(message))
                    .with_rule("runtime.replan.none")
                    .with_hint((closest.empty() ? describe_closest(*report) : closest) +
                               "; raise the budget or free device memory, then acquire again"));
  }
  const ResidencyLayout& old = layout;
  ResidencyLayout& neu = *next;
  for (std::size_t i = 0; i < neu.tensors.size(); ++i)
    if (neu.tensors[i].info != old.tensors[i].info ||
        neu.tensors[i].stored_bytes != old.tensors[i].stored_bytes)
      return fail(Status(Errc::internal, "the new plan's tensors differ from the session's")
                      .with_rule("runtime.replan.layout"));

  // ---- build the new homes beside the old ones ------------------------------------------
  const std::uint64_t trace_t0 = trace.now_ns();
  std::vector<GroupState> fresh(neu.groups.size());
  std::vector<bool> reused(old.groups.size(), false);  // old group memory the new plan keeps
  std::vector<bool> allocated(neu.groups.size(), false);
  detail::HostRegion new_pinned;
  detail::HostRegion new_pageable;
  const bool keep_pinned = same_homes(old, neu, StoreKind::pinned);
  const bool keep_pageable = same_homes(old, neu, StoreKind::pageable);
  std::uint64_t copied = 0;
  std::uint64_t reread = 0;
  const auto undo = [&] {
    for (std::uint32_t g = 0; g < neu.groups.size(); ++g) {
      if (!allocated[g]) continue;
      device->free(fresh[g].memory, neu.groups[g].device_bytes);
      device_store.release(neu.groups[g].device_bytes);
    }
    if (new_pinned.data() != nullptr) {
      device->unpin(new_pinned.data());
      pinned_store.release(new_pinned.size());
    }
    if (new_pageable.data() != nullptr) pageable_store.release(new_pageable.size());
  };
  const auto region = [&](detail::MemoryStore& store, FaultSite site, std::uint64_t bytes,
                          const char* name) -> Result<detail::HostRegion> {
    if (bytes == 0) return detail::HostRegion();
    // Beside the old region until the switch: the new one alone must fit the budget.
    if (!store.try_reserve_within(bytes, UINT64_MAX)) return Status(Errc::internal, "reserve");
    if (detail::fault_hit(site)) {
      store.release(bytes);
      return Status(Errc::out_of_memory,
                    std::string("could not allocate the new ") + name + " region (injected)")
          .with_rule("runtime.alloc");
    }
    auto r = detail::HostRegion::allocate(bytes, name);
    if (!r) store.release(bytes);
    return r;
  };
  if (!keep_pinned) {
    auto r = region(pinned_store, FaultSite::pinned_alloc, neu.pinned_bytes, "pinned");
    if (!r) {
      undo();
      return fail(r.status());
    }
    new_pinned = std::move(r.value());
    if (new_pinned.data() != nullptr) {
      device->pin(new_pinned.data(), new_pinned.size());
      pin_calls += 1;  // once per re-plan, never per step
    }
  }
  if (!keep_pageable) {
    auto r = region(pageable_store, FaultSite::host_alloc, neu.pageable_bytes, "pageable");
    if (!r) {
      undo();
      return fail(r.status());
    }
    new_pageable = std::move(r.value());
  }
  // Device groups the new plan keeps: the old memory when the same group is on the device now
  // (kept groups are the same units in every placement), else new memory.
  for (std::uint32_t g = 0; g < neu.groups.size(); ++g) {
    const GroupLayout& ng = neu.groups[g];
    if (!ng.load_at_open || ng.in_place) continue;
    for (std::uint32_t o = 0; o < old.groups.size(); ++o) {
      const GroupLayout& og = old.groups[o];
      if (reused[o] || groups[o].state != State::resident || og.in_place ||
          og.component != ng.component || og.tensors != ng.tensors)
        continue;
      reused[o] = true;
      fresh[g].memory = groups[o].memory;
      break;
    }
    if (fresh[g].memory != nullptr) continue;
    // Beside the old plan's kept groups until the switch frees them.
    if (!device_store.try_reserve_within(ng.device_bytes, UINT64_MAX)) {
      undo();
      return fail(Status(Errc::internal, "device store overflow").with_rule("runtime.state"));
    }
    auto memory = device->allocate(ng.device_bytes);
    if (!memory) {
      device_store.release(ng.device_bytes);
      undo();
      return fail(Status(memory.status())
                      .with_hint("the device could not hold the new plan's resident weights "
                                 "beside the old ones; free device memory and acquire again"));
    }
    fresh[g].memory = memory.value();
    allocated[g] = true;
  }
  for (GroupState& s : fresh)
    if (s.memory != nullptr) s.state = State::resident;

  // Fill every new home that is not the old one, from memory where the weight is now.
  detail::HostRegion staging;
  for (std::size_t i = 0; i < neu.tensors.size(); ++i) {
    const TensorSlot& from = old.tensors[i];
    const TensorSlot& to = neu.tensors[i];
    const std::uint64_t n = to.stored_bytes;
    unsigned char* dst = nullptr;
    bool dst_device = false;
    if (to.home == StoreKind::device) {
      if (!allocated[to.group]) continue;  // kept memory: already holds it
      dst = static_cast<unsigned char*>(fresh[to.group].memory) + to.group_offset;
      dst_device = true;
    } else if (to.home == StoreKind::pinned && !keep_pinned) {
      dst = new_pinned.data() + to.home_offset;
    } else if (to.home == StoreKind::pageable && !keep_pageable) {
      dst = new_pageable.data() + to.home_offset;
    } else {
      continue;  // the same region, or the disk tier (checkpoint or the same cache file)
    }
    const unsigned char* src = nullptr;
    bool src_device = false;
    switch (from.home) {
      case StoreKind::pinned:
        src = pinned_region.data() + from.home_offset;
        break;
      case StoreKind::pageable:
        src = pageable_region.data() + from.home_offset;
        break;
      case StoreKind::device:
        src = static_cast<const unsigned char*>(groups[from.group].memory) + from.group_offset;
        src_device = !device->host_addressable();
        break;
      case StoreKind::disk:
        break;
    }
    Status status;
    if (src != nullptr && !src_device) {
      status = dst_device ? device->copy_to_device(dst, src, n) : Status::ok();
      if (!dst_device) std::memcpy(dst, src, n);
      copied += n;
    } else {
      // Through host memory: a device-only source, or the disk tier.
      unsigned char* host = dst;
      if (dst_device && !device->host_addressable()) {
        if (staging.size() < n) {
          auto r = detail::HostRegion::allocate(n, "staging");
          if (!r) {
            undo();
            return fail(r.status());
          }
          staging = std::move(r.value());
        }
        host = staging.data();
      }
      if (src != nullptr) {
        status = device->copy_to_host(host, src, n);  // a resident weight demoted: not re-read
        copied += n;
      } else if (detail::fault_hit(FaultSite::read)) {
        status = Status(Errc::io_error, "read failed (injected)").with_rule("file.io");
      } else if (from.cast || from.quantized) {
        status = cache_reader.read_at(host, n, from.home_offset);
        reread += n;
      } else {
        status = sources[from.component]->read(*from.info, host);
        reread += n;
      }
      if (status && host != dst) status = device->copy_to_device(dst, host, n);
    }
    if (!status) {
      undo();
      return fail(std::move(status).with_tensor(from.info->name));
    }
  }

  // ---- commit: nothing below can fail ---------------------------------------------------
  for (std::uint32_t o = 0; o < old.groups.size(); ++o) {
    if (groups[o].memory == nullptr || reused[o]) continue;
    device->free(groups[o].memory, old.groups[o].device_bytes);
    device_store.release(old.groups[o].device_bytes);
  }
  if (!keep_pinned) {
    if (pinned_region.data() != nullptr) device->unpin(pinned_region.data());
    pinned_store.release(pinned_region.size());
    pinned_region = std::move(new_pinned);
  }
  if (!keep_pageable) {
    pageable_store.release(pageable_region.size());
    pageable_region = std::move(new_pageable);
  }
  disk_store.release(disk_bytes(old));
  (void)disk_store.try_reserve(disk_bytes(neu));
  Strategy previous = std::move(strategy);
  strategy = std::move(*chosen);
  layout = std::move(neu);
  groups = std::move(fresh);
  orders.assign(layout.components.size(), Order{});
  for (auto& order : orders) order.position.assign(layout.groups.size(), -1);
  bool prefetch = false;
  for (const auto& c : layout.components) prefetch = prefetch || c.prefetch;
  if (prefetch && !worker.joinable()) worker = std::thread([this] { worker_loop(); });
  replans += 1;
  trace.span(lane_host, "pressure", "replan", trace_t0, trace.now_ns(),
             {{"bytes", copied + reread}});
  if (options.on_replan) {
    ReplanEvent event;
    event.old_plan = &previous;
    event.new_plan = &strategy;
    event.reason = reason;
    event.device_limit = limit;
    event.bytes_copied = copied;
    event.bytes_read = reread;
    options.on_replan(event);
  }
  cv.notify_all();
  return Status::ok();
}

}  // namespace v1
}  // namespace dmem
