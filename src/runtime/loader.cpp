// The loader: every weight to its home in plan order, through I/O threads that each own one
// staging buffer, so host memory during load is the steady footprint plus io_threads × staging.
// Unchanged weights are read straight into host-addressable homes; cast weights go through the
// staging buffer and are converted on the way. Transformed weights whose home is disk are written
// once, in order, to a cache file that is removed when the session closes.
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "runtime/cache_file.hpp"
#include "runtime/fault_injection.hpp"
#include "runtime/nvtx_range.hpp"
#include "runtime/session_impl.hpp"

namespace dmem {
inline namespace v1 {
namespace {

using detail::FaultSite;
using detail::TensorSlot;

Status budget_error(const char* store, std::uint64_t need, std::uint64_t budget) {
  std::string message = "the plan keeps ";
  message += std::to_string(need);
  message += " bytes in the ";
  message += store;
  message += " store, over its budget of ";
  message += std::to_string(budget);
  message += " bytes";
  std::string rule = "runtime.budget.";
  rule += store;
  return Status(Errc::out_of_memory, std::move(message))
      .with_rule(std::move(rule))
      .with_hint("raise the budget, or choose a plan that keeps less there (dmem plan)");
}

Result<detail::HostRegion> take_region(detail::MemoryStore& store, FaultSite site,
                                       std::uint64_t bytes, const char* name) {
  if (bytes == 0) return detail::HostRegion();
  if (!store.try_reserve(bytes)) return budget_error(name, bytes, store.budget());
  if (detail::fault_hit(site)) {
    store.release(bytes);
    return Status(Errc::out_of_memory,
                  std::string("could not allocate the ") + name + " region (injected)")
        .with_rule("runtime.alloc");
  }
  auto region = detail::HostRegion::allocate(bytes, name);
  if (!region) store.release(bytes);
  return region;
}

std::string cache_folder(const SessionOptions& options) {
  if (!options.cache_dir.empty()) return options.cache_dir;
  const char* tmp = std::getenv("TMPDIR");
  return tmp != nullptr && *tmp != '\0' ? std::string(tmp) : std::string("/tmp");
}

}  // namespace

Status Session::Impl::prepare() noexcept {
  // Stores at rest first: a plan that does not fit fails before any read.
  auto pinned = take_region(pinned_store, FaultSite::pinned_alloc, layout.pinned_bytes, "pinned");
  if (!pinned) return pinned.status();
  pinned_region = std::move(pinned.value());
  if (layout.pinned_bytes != 0) {
    device->pin(pinned_region.data(), pinned_region.size());
    pin_calls += 1;  // one pinning call for the whole arena, never one per step
  }
  auto pageable =
      take_region(pageable_store, FaultSite::host_alloc, layout.pageable_bytes, "pageable");
  if (!pageable) return pageable.status();
  pageable_region = std::move(pageable.value());

  std::uint64_t kept = 0;
  for (const auto& g : layout.groups)
    if (g.load_at_open && !g.in_place) kept += g.device_bytes;
  if (options.device_budget != 0 && kept + layout.largest_streamed > options.device_budget) {
    return budget_error("device", kept + layout.largest_streamed, options.device_budget)
        .with_hint(
            "the kept weights plus the largest group that moves must fit the device "
            "budget: stream more blocks, or raise the budget");
  }
  for (std::uint32_t g = 0; g < layout.groups.size(); ++g) {
    const auto& group = layout.groups[g];
    if (!group.load_at_open || group.in_place) continue;
    if (!device_store.try_reserve(group.device_bytes))
      return budget_error("device", kept, device_store.budget());
    auto memory = device->allocate(group.device_bytes);
    if (!memory) {
      device_store.release(group.device_bytes);
      return memory.status();
    }
    groups[g].memory = memory.value();
    groups[g].state = State::resident;
  }

  // The disk tier: the cache file, and checkpoint bytes that a disk placement streams from (a
  // dropped component rereads its checkpoint too, but that is the model, not a tier).
  std::uint64_t on_disk = layout.cache_bytes;
  for (const TensorSlot& slot : layout.tensors) {
    const auto kind = layout.components[slot.component].placement.kind;
    if (slot.home == StoreKind::disk && !slot.cast && !slot.quantized &&
        kind != PlacementKind::dropped)
      on_disk += slot.stored_bytes;
  }
  (void)disk_store.try_reserve(on_disk);  // the disk store has no budget: it is measured

  sources.resize(layout.components.size());
  for (std::size_t c = 0; c < layout.components.size(); ++c) {
    auto source = TensorSource::open(*model.find(layout.components[c].name));
    if (!source) return source.status();
    sources[c].emplace(std::move(source.value()));
  }
  if (options.direct_io) {
    // A file system without O_DIRECT (tmpfs on older kernels) reads through the page cache.
    direct_io = true;
    direct_io_active = true;
    for (auto& source : sources) direct_io_active = source->enable_direct_io() && direct_io_active;
  }
  if (layout.cache_bytes != 0) {
    std::string path;
    if (options.cache_dir.empty()) {
      // No folder of the host's: a temporary, removed at close.
      path = cache_folder(options);
      path += "/dmem-cache-";
      path += std::to_string(::getpid());
      path += ".bin";
    } else {
      cache_key = detail::cache_key(model, layout, quantizer_versions);
      path = detail::cache_path(options.cache_dir, *cache_key);
      if (detail::cache_reusable(path, *cache_key, layout.cache_bytes)) {
        auto reader = detail::ReadFile::open(path);
        if (!reader) return reader.status();
        cache_reader = std::move(reader.value());
        cache_reused = true;
        return Status::ok();
      }
    }
    auto file = detail::TempFile::create(path);
    if (!file) return file.status();
    cache.emplace(std::move(file.value()));
  }
  return Status::ok();
}

namespace {

struct LoadJob {
  std::uint32_t tensor;
  void* device_dst;  // device buffer or null
  void* host_dst;    // home region or null
  bool to_cache;
};

// Reads [begin, begin + size) of a tensor from its checkpoint into `buf` (`cap` bytes, page
// aligned), with the fault-injection sites; returns where the bytes start (a direct read keeps
// the block alignment the kernel wants, so they may start a little after `buf`).
Result<const unsigned char*> read_source(const TensorSource& source, const TensorInfo& t,
                                         unsigned char* buf, std::uint64_t cap, std::uint64_t begin,
                                         std::uint64_t size) {
  if (detail::fault_hit(FaultSite::read)) {
    return Status(Errc::io_error, "read failed (injected)")
        .with_tensor(t.name)
        .with_rule("file.io");
  }
  if (detail::fault_hit(FaultSite::short_read)) {
    return Status(Errc::format_error, "the file ended before the tensor's end (injected)")
        .with_tensor(t.name)
        .with_rule("file.truncated");
  }
  return source.read_aligned(t, buf, cap, begin, size);
}

}  // namespace

Status Session::Impl::quantize_job(std::uint32_t index, void* device_dst, void* host_dst,
                                   bool to_cache) noexcept {
  // A quantizer sees whole tensors: the one transform that needs a tensor in memory at once
  // (docs/runtime.md: the load window grows by the largest quantized tensor while it runs).
  const TensorSlot& slot = layout.tensors[index];
  const TensorInfo& t = *slot.info;
  const QuantizerInstance& q = quantizers[slot.component];
  const auto take = [&](std::uint64_t bytes) -> Result<detail::HostRegion> {
    if (detail::fault_hit(FaultSite::host_alloc)) {
      return Status(Errc::out_of_memory, "could not allocate a quantization buffer (injected)")
          .with_rule("runtime.alloc");
    }
    auto region = detail::HostRegion::allocate(bytes, "staging");
    if (region) {
      const std::uint64_t now = staging_in_use.fetch_add(bytes) + bytes;
      std::uint64_t peak = staging_peak.load();
      while (now > peak && !staging_peak.compare_exchange_weak(peak, now)) {
      }
    }
    return region;
  };
  std::vector<detail::HostRegion> held;  // returned to the staging account on every exit
  const auto release = [&] {
    for (auto& r : held) staging_in_use.fetch_sub(r.size());
  };
  const std::uint64_t raw_cap = t.nbytes + (direct_io ? TensorSource::kDirectSlack : 0);
  auto raw = take(raw_cap);
  if (!raw) return raw.status();
  held.push_back(std::move(raw.value()));
  auto got = read_source(*sources[slot.component], t, held.back().data(), raw_cap, 0, t.nbytes);
  Status status = got ? Status::ok() : got.status();
  const void* input = got ? got.value() : nullptr;
  DType input_dtype = t.dtype;
  if (status && !q.accepts(t.dtype)) {
    auto wide = take(t.elements() * 4);
    if (!wide) {
      release();
      return wide.status();
    }
    held.push_back(std::move(wide.value()));
    status = convert(t.dtype, input, DType::f32, held.back().data(), t.elements());
    input = held.back().data();
    input_dtype = DType::f32;
  }
  const bool direct = !to_cache && (device_dst == nullptr) != (host_dst == nullptr) &&
                      (host_dst != nullptr || device->host_addressable());
  unsigned char* packed = nullptr;
  if (status && direct) {
    packed = static_cast<unsigned char*>(device_dst != nullptr ? device_dst : host_dst);
  } else if (status) {
    auto out = take(slot.stored_bytes);
    if (!out) {
      release();
      return out.status();
    }
    held.push_back(std::move(out.value()));
    packed = held.back().data();
  }
  if (status) {
    status = q.quantize(HostTensor{input_dtype, t.shape, input,
                                   input_dtype == DType::f32 ? t.elements() * 4 : t.nbytes},
                        packed, slot.stored_bytes);
  }
  if (status && !direct) {
    if (device_dst != nullptr)
      status = device->copy_to_device(device_dst, packed, slot.stored_bytes);
    if (status && host_dst != nullptr) std::memcpy(host_dst, packed, slot.stored_bytes);
    if (status && to_cache) {
      status = cache->write(packed, slot.stored_bytes);
      static const unsigned char zeros[4096] = {};
      const std::uint64_t pad = (4096 - slot.stored_bytes % 4096) % 4096;
      if (status && pad != 0) status = cache->write(zeros, pad);
    }
  }
  release();
  if (!status) return std::move(status).with_tensor(t.name);
  return Status::ok();
}

Status Session::Impl::gather_job(std::uint32_t index, void* device_dst, void* host_dst,
                                 bool to_cache) noexcept {
  // A pre-quantized weight: its checkpoint tensors are read, as they are, to their places in
  // the plugin's packed layout (nothing is dequantized or quantized again).
  const TensorSlot& slot = layout.tensors[index];
  const detail::PrequantWeight& w = *slot.prequant;
  const TensorSource& source = *sources[slot.component];
  std::vector<detail::HostRegion> held;  // returned to the staging account on every exit
  const auto release = [&] {
    for (auto& r : held) staging_in_use.fetch_sub(r.size());
  };
  const auto take = [&](std::uint64_t bytes) -> Result<unsigned char*> {
    if (detail::fault_hit(FaultSite::host_alloc)) {
      return Status(Errc::out_of_memory, "could not allocate a gather buffer (injected)")
          .with_rule("runtime.alloc");
    }
    auto region = detail::HostRegion::allocate(bytes, "staging");
    if (!region) return region.status();
    const std::uint64_t now = staging_in_use.fetch_add(bytes) + bytes;
    std::uint64_t peak = staging_peak.load();
    while (now > peak && !staging_peak.compare_exchange_weak(peak, now)) {
    }
    held.push_back(std::move(region.value()));
    return held.back().data();
  };
  const bool direct = !to_cache && (device_dst == nullptr) != (host_dst == nullptr) &&
                      (host_dst != nullptr || device->host_addressable());
  Status status;
  unsigned char* packed = nullptr;
  if (direct) {
    packed = static_cast<unsigned char*>(device_dst != nullptr ? device_dst : host_dst);
  } else if (auto out = take(slot.stored_bytes)) {
    packed = out.value();
  } else {
    status = out.status();
  }
  // O_DIRECT reads land block-aligned in a buffer of their own, then move to their place.
  unsigned char* bounce = nullptr;
  std::uint64_t bounce_cap = 0;
  if (status && direct_io) {
    for (const detail::PackedPiece& p : w.pieces)
      if (p.tensor != nullptr) bounce_cap = std::max(bounce_cap, p.nbytes);
    bounce_cap += TensorSource::kDirectSlack;
    if (auto b = take(bounce_cap)) {
      bounce = b.value();
    } else {
      status = b.status();
    }
  }
  for (const detail::PackedPiece& p : w.pieces) {
    if (!status) break;
    if (p.tensor == nullptr) {
      std::memcpy(packed + p.at, p.bytes.data(), p.nbytes);
      continue;
    }
    unsigned char* buf = bounce != nullptr ? bounce : packed + p.at;
    auto got =
        read_source(source, *p.tensor, buf, bounce != nullptr ? bounce_cap : p.nbytes, 0, p.nbytes);
    if (!got) {
      status = got.status();
    } else if (got.value() != packed + p.at) {
      std::memmove(packed + p.at, got.value(), p.nbytes);
    }
  }
  if (status && !direct) {
    if (device_dst != nullptr)
      status = device->copy_to_device(device_dst, packed, slot.stored_bytes);
    if (status && host_dst != nullptr) std::memcpy(host_dst, packed, slot.stored_bytes);
    if (status && to_cache) {
      status = cache->write(packed, slot.stored_bytes);
      static const unsigned char zeros[4096] = {};
      const std::uint64_t pad = (4096 - slot.stored_bytes % 4096) % 4096;
      if (status && pad != 0) status = cache->write(zeros, pad);
    }
  }
  release();
  if (!status) return std::move(status).with_tensor(slot.info->name);
  return Status::ok();
}

Status Session::Impl::load() noexcept {
  const auto start = std::chrono::steady_clock::now();
  std::vector<LoadJob> parallel;
  std::vector<LoadJob> ordered;  // cache writes, in plan order
  std::uint64_t total = 0;
  for (std::uint32_t i = 0; i < layout.tensors.size(); ++i) {
    const TensorSlot& slot = layout.tensors[i];
    const auto& group = layout.groups[slot.group];
    LoadJob job{i, nullptr, nullptr, false};
    if (group.load_at_open && !group.in_place)
      job.device_dst = static_cast<unsigned char*>(groups[slot.group].memory) + slot.group_offset;
    if (slot.home == StoreKind::pinned) job.host_dst = pinned_region.data() + slot.home_offset;
    if (slot.home == StoreKind::pageable) job.host_dst = pageable_region.data() + slot.home_offset;
    // A reused cache already holds what the disk tier needs.
    job.to_cache = slot.home == StoreKind::disk && (slot.cast || slot.quantized) && !cache_reused;
    if (job.device_dst == nullptr && job.host_dst == nullptr && !job.to_cache) continue;
    total += slot.info->nbytes;
    (job.to_cache ? ordered : parallel).push_back(job);
  }

  std::atomic<std::uint64_t> done{0};
  std::atomic<bool> failed{false};
  std::mutex error_mu;
  Status first_error;
  const std::uint64_t chunk_cap = std::max<std::uint64_t>(options.staging_bytes, 64u << 10);
  const std::uint64_t in_cap = chunk_cap + (direct_io ? TensorSource::kDirectSlack : 0);
  const auto fail = [&](Status status) {
    std::lock_guard<std::mutex> lock(error_mu);
    if (first_error.is_ok()) first_error = std::move(status);
    failed.store(true);
  };

  // Moves one tensor through `staging` (allocated on first need) to its destinations.
  const auto run_job = [&](const LoadJob& job, detail::HostRegion& staging,
                           std::uint32_t lane) -> Status {
    const TensorSlot& slot = layout.tensors[job.tensor];
    const TensorInfo& t = *slot.info;
    const TensorSource& source = *sources[slot.component];
    const detail::NvtxRange nvtx(detail::NvtxKind::load, t.name.c_str());
    const std::uint64_t t0 = trace.now_ns();
    if (slot.quantized) {
      DMEM_TRY(slot.prequant != nullptr
                   ? gather_job(job.tensor, job.device_dst, job.host_dst, job.to_cache)
                   : quantize_job(job.tensor, job.device_dst, job.host_dst, job.to_cache));
      done.fetch_add(t.nbytes);
      trace.span(lane, "load", t.name, t0, trace.now_ns(), {{"bytes", t.nbytes}});
      return Status::ok();
    }
    // Straight into the home when nothing changes on the way; a direct (O_DIRECT) read needs
    // block-aligned destinations, so it always goes through staging.
    const bool straight =
        !slot.cast && !direct_io && (job.device_dst == nullptr || device->host_addressable());
    if (straight) {
      auto* dst =
          static_cast<unsigned char*>(job.device_dst != nullptr ? job.device_dst : job.host_dst);
      for (std::uint64_t off = 0; off < t.nbytes && !failed.load(); off += chunk_cap) {
        const std::uint64_t n = std::min(chunk_cap, t.nbytes - off);
        auto got = read_source(source, t, dst + off, n, off, n);
        if (!got) return got.status();
        done.fetch_add(n);
      }
    } else {
      if (staging.data() == nullptr) {
        if (detail::fault_hit(FaultSite::host_alloc)) {
          return Status(Errc::out_of_memory, "could not allocate a staging buffer (injected)")
              .with_rule("runtime.alloc");
        }
        // Input half and output half: a cast converts from one into the other.
        auto region = detail::HostRegion::allocate(in_cap + chunk_cap, "staging");
        if (!region) return region.status();
        staging = std::move(region.value());
        device->pin(staging.data(), staging.size());
        const std::uint64_t now = staging_in_use.fetch_add(staging.size()) + staging.size();
        std::uint64_t peak = staging_peak.load();
        while (now > peak && !staging_peak.compare_exchange_weak(peak, now)) {
        }
      }
      const DTypeInfo& src_info = dtype_info(t.dtype);
      const DTypeInfo& dst_info = dtype_info(slot.stored_dtype);
      // Whole storage blocks (elements for element types, which is all a cast sees).
      const std::uint64_t elems = t.nbytes / src_info.block_bytes;
      const std::uint64_t per = std::max<std::uint64_t>(
          1, chunk_cap / std::max(src_info.block_bytes, dst_info.block_bytes));
      std::uint64_t cache_pos = slot.home_offset;
      for (std::uint64_t e = 0; e < elems && !failed.load(); e += per) {
        const std::uint64_t n = std::min(per, elems - e);
        const std::uint64_t src_off = e * src_info.block_bytes;
        const std::uint64_t src_n = n * src_info.block_bytes;
        auto got = read_source(source, t, staging.data(), in_cap, src_off, src_n);
        if (!got) return got.status();
        const unsigned char* data = got.value();
        const std::uint64_t dst_off = e * dst_info.block_bytes;
        const std::uint64_t dst_n = n * dst_info.block_bytes;
        // One destination the host can address: convert straight into it (no second copy).
        unsigned char* only = nullptr;
        if (!job.to_cache && (job.device_dst == nullptr) != (job.host_dst == nullptr)) {
          if (job.host_dst != nullptr) only = static_cast<unsigned char*>(job.host_dst);
          if (job.device_dst != nullptr && device->host_addressable())
            only = static_cast<unsigned char*>(job.device_dst);
        }
        if (slot.cast && only != nullptr) {
          DMEM_TRY(convert(t.dtype, data, slot.stored_dtype, only + dst_off, n));
          done.fetch_add(src_n);
          continue;
        }
        if (slot.cast) {
          unsigned char* out = staging.data() + in_cap;
          DMEM_TRY(convert(t.dtype, data, slot.stored_dtype, out, n));
          data = out;
        }
        if (job.device_dst != nullptr) {
          DMEM_TRY(device->copy_to_device(static_cast<unsigned char*>(job.device_dst) + dst_off,
                                          data, dst_n));
        }
        if (job.host_dst != nullptr)
          std::memcpy(static_cast<unsigned char*>(job.host_dst) + dst_off, data, dst_n);
        if (job.to_cache) {
          DMEM_TRY(cache->write(data, dst_n));
          cache_pos += dst_n;
        }
        done.fetch_add(src_n);
      }
      if (job.to_cache) {
        // Pad to the next tensor's offset (4096-aligned).
        static const unsigned char zeros[4096] = {};
        const std::uint64_t pad = (4096 - cache_pos % 4096) % 4096;
        if (pad != 0) DMEM_TRY(cache->write(zeros, pad));
      }
    }
    trace.span(lane, "load", t.name, t0, trace.now_ns(), {{"bytes", t.nbytes}});
    return Status::ok();
  };

  // Whether any job reads through staging (the window the RAM probe bounds).
  bool staged = direct_io;
  for (const LoadJob& job : parallel)
    staged = staged || layout.tensors[job.tensor].cast ||
             (job.device_dst != nullptr && !device->host_addressable());
  const std::uint32_t threads = static_cast<std::uint32_t>(std::min<std::size_t>(
      std::max<std::uint32_t>(1, options.io_threads), std::max<std::size_t>(1, parallel.size())));
  std::atomic<std::size_t> next{0};
  std::atomic<std::uint32_t> running{threads};
  std::mutex done_mu;
  std::condition_variable done_cv;
  std::vector<std::thread> pool;
  pool.reserve(threads);
  for (std::uint32_t w = 0; w < threads; ++w) {
    pool.emplace_back([&, w] {
      const std::uint32_t lane = trace.lane("io " + std::to_string(w));
      detail::HostRegion staging;
      while (!failed.load()) {
        // RAM short (MemAvailable, a cgroup limit lowered mid-load): this thread gives its
        // staging buffer back and waits, so the window shrinks rather than the load fail.
        if (staged && !may_stage(w, in_cap + chunk_cap)) {
          staging_waits.fetch_add(1);
          if (staging.data() != nullptr) {
            device->unpin(staging.data());
            staging_in_use.fetch_sub(staging.size());
            staging.reset();
          }
          while (!failed.load() && next.load() < parallel.size() &&
                 !may_stage(w, in_cap + chunk_cap))
            std::this_thread::sleep_for(std::chrono::milliseconds(1));
        }
        const std::size_t i = next.fetch_add(1);
        if (i >= parallel.size()) break;
        Status status = run_job(parallel[i], staging, lane);
        if (!status) fail(std::move(status));
      }
      if (staging.data() != nullptr) {
        device->unpin(staging.data());
        staging_in_use.fetch_sub(staging.size());
      }
      {
        std::lock_guard<std::mutex> lock(done_mu);
        running.fetch_sub(1);
      }
      done_cv.notify_all();
    });
  }
  const auto report = [&](bool last) {
    if (!options.progress) return;
    LoadProgress p;
    p.bytes_done = done.load();
    p.bytes_total = total;
    p.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    p.bytes_per_second = p.seconds > 0 ? static_cast<double>(p.bytes_done) / p.seconds : 0;
    p.eta_seconds =
        p.bytes_per_second > 0
            ? static_cast<double>(total - std::min(total, p.bytes_done)) / p.bytes_per_second
            : 0;
    (void)last;
    options.progress(p);
  };
  {
    std::unique_lock<std::mutex> lock(done_mu);
    while (running.load() != 0) {
      done_cv.wait_for(lock, std::chrono::milliseconds(100));
      if (running.load() != 0) {
        lock.unlock();
        report(false);
        lock.lock();
      }
    }
  }
  for (auto& t : pool) t.join();

  if (!failed.load() && !ordered.empty()) {
    detail::HostRegion staging;
    const std::uint32_t lane = trace.lane("io 0");
    for (const LoadJob& job : ordered) {
      Status status = run_job(job, staging, lane);
      if (!status) {
        fail(std::move(status));
        break;
      }
    }
    if (staging.data() != nullptr) {
      device->unpin(staging.data());
      staging_in_use.fetch_sub(staging.size());
    }
    if (!failed.load() && cache_key) {
      // Persistent: the trailer marks it complete, and the rename makes it visible whole.
      const std::string trailer = detail::cache_trailer(*cache_key, layout.cache_bytes);
      Status status = cache->write(trailer.data(), trailer.size());
      if (status) status = cache->commit();
      if (!status) fail(std::move(status));
    }
    if (!failed.load()) {
      auto reader = detail::ReadFile::open(cache_key ? cache->final_path() : cache->temp_path());
      if (!reader) {
        fail(reader.status());
      } else {
        cache_reader = std::move(reader.value());
      }
    }
  }
  if (failed.load()) return first_error;
  load_bytes = done.load();
  load_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  report(true);
  return Status::ok();
}

}  // namespace v1
}  // namespace dmem
