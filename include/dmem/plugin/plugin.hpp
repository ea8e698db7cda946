// The C++ side of the plugin ABI, header-only and compiled into the plugin: a plugin author writes
// an ordinary class and DMEM_QUANTIZER_PLUGIN(Class) turns it into the C function tables of
// abi.h. The adapter validates what the host passes, fills struct_size, and converts every
// failure (an Outcome, or an exception when the plugin is built with them) into a status code and
// a bounded message: nothing but C crosses the boundary (docs/plugin-guide.md).
#pragma once

#include <algorithm>
#include <atomic>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <new>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "dmem/plugin/abi.h"

#if defined(__cpp_exceptions) || defined(__EXCEPTIONS)
#include <exception>
#define DMEM_PLUGIN_HAS_EXCEPTIONS 1
#else
#define DMEM_PLUGIN_HAS_EXCEPTIONS 0
#endif

namespace dmem {
inline namespace v1 {
namespace plugin {

/// What a plugin method reports: ok, or a DMEM_PLUGIN_* status code with a message.
class Outcome {
 public:
  Outcome() = default;
  Outcome(std::int32_t code, std::string message) : code_(code), message_(std::move(message)) {}
  [[nodiscard]] static Outcome ok() { return {}; }
  [[nodiscard]] bool is_ok() const noexcept { return code_ == DMEM_PLUGIN_OK; }
  [[nodiscard]] std::int32_t code() const noexcept { return code_; }
  [[nodiscard]] const std::string& message() const noexcept { return message_; }

 private:
  std::int32_t code_ = DMEM_PLUGIN_OK;
  std::string message_;
};

/// The key/value parameters an instance is created with (views into the host's strings).
class Params {
 public:
  Params() = default;
  explicit Params(const dmem_plugin_params* params) noexcept {
    // Fields are read only when struct_size covers them (abi.h).
    if (params && params->struct_size >= sizeof(dmem_plugin_params) && params->keys &&
        params->values)
      params_ = params;
  }
  [[nodiscard]] std::size_t size() const noexcept { return params_ ? params_->count : 0; }
  [[nodiscard]] std::string_view key(std::size_t i) const noexcept {
    return text(params_->keys[i]);
  }
  [[nodiscard]] std::string_view value(std::size_t i) const noexcept {
    return text(params_->values[i]);
  }
  [[nodiscard]] bool has(std::string_view key_name) const noexcept {
    for (std::size_t i = 0; i < size(); ++i)
      if (key(i) == key_name) return true;
    return false;
  }
  /// The value of `key_name`, or `fallback` when it is absent.
  [[nodiscard]] std::string_view get(std::string_view key_name,
                                     std::string_view fallback = {}) const noexcept {
    for (std::size_t i = 0; i < size(); ++i)
      if (key(i) == key_name) return value(i);
    return fallback;
  }

 private:
  static std::string_view text(const char* s) noexcept { return s ? s : ""; }
  const dmem_plugin_params* params_ = nullptr;
};

/// Capabilities in C++ form; the adapter turns them into a dmem_quantizer_caps that lives as
/// long as the instance.
struct Caps {
  std::uint32_t exec_devices = DMEM_PLUGIN_DEVICE_CPU;
  std::uint32_t storage_tiers = DMEM_PLUGIN_TIER_VRAM | DMEM_PLUGIN_TIER_PINNED |
                                DMEM_PLUGIN_TIER_PAGEABLE | DMEM_PLUGIN_TIER_DISK;
  std::uint32_t flags = DMEM_PLUGIN_QFLAG_MOVES_PACKED;
  std::uint64_t input_dtypes = 0;  ///< DMEM_PLUGIN_DTYPE_BIT of each accepted dtype
  std::uint32_t min_sm = 0;
  std::uint32_t block_size = 0;
  std::uint32_t quality_tier = DMEM_PLUGIN_QUALITY_NATIVE;
  std::vector<std::uint32_t> cuda_archs;
  double speed_factor = 1.0;
  std::string variant;
  std::string display;
};

/// Bytes per element of a plain dtype code; 0 for an unknown one.
[[nodiscard]] constexpr std::size_t dtype_size(std::uint32_t dtype) noexcept {
  switch (dtype) {
    case DMEM_PLUGIN_DTYPE_F64:
    case DMEM_PLUGIN_DTYPE_I64:
      return 8;
    case DMEM_PLUGIN_DTYPE_F32:
    case DMEM_PLUGIN_DTYPE_I32:
      return 4;
    case DMEM_PLUGIN_DTYPE_F16:
    case DMEM_PLUGIN_DTYPE_BF16:
    case DMEM_PLUGIN_DTYPE_I16:
      return 2;
    case DMEM_PLUGIN_DTYPE_F8_E4M3:
    case DMEM_PLUGIN_DTYPE_F8_E5M2:
    case DMEM_PLUGIN_DTYPE_I8:
    case DMEM_PLUGIN_DTYPE_U8:
      return 1;
    default:
      return 0;
  }
}

/// Number of elements of `t`, false when it overflows 64 bits.
[[nodiscard]] inline bool element_count(const dmem_plugin_tensor& t, std::uint64_t& n) noexcept {
  n = 1;
  for (std::uint32_t i = 0; i < t.rank && i < DMEM_PLUGIN_MAX_RANK; ++i) {
    const std::uint64_t d = t.shape[i];
    if (d != 0 && n > UINT64_MAX / d) return false;
    n *= d;
  }
  return true;
}

/// Writes `message` into the caller's buffer: at most capacity - 1 bytes and a NUL; `length` gets
/// the full length so the caller can tell it was truncated.
inline void write_error(dmem_plugin_error* err, std::string_view message) noexcept {
  if (!err) return;
  constexpr std::size_t kHasLength = offsetof(dmem_plugin_error, length) + sizeof(err->length);
  constexpr std::size_t kHasMessage = offsetof(dmem_plugin_error, message) + sizeof(err->message);
  if (err->struct_size >= kHasLength)
    err->length = static_cast<std::uint32_t>(std::min<std::size_t>(message.size(), UINT32_MAX));
  if (err->struct_size < kHasMessage || !err->message || err->capacity == 0) return;
  const std::size_t n = std::min<std::size_t>(message.size(), err->capacity - 1u);
  if (n) std::memcpy(err->message, message.data(), n);
  err->message[n] = '\0';
}

namespace detail {
inline std::atomic<const dmem_plugin_host*>& host_slot() noexcept {
  static std::atomic<const dmem_plugin_host*> host{nullptr};
  return host;
}
}  // namespace detail

/// Logs through the host's callback (dropped before dmem_plugin_entry ran or without one).
inline void log(std::int32_t level, const char* message) noexcept {
  const dmem_plugin_host* host = detail::host_slot().load(std::memory_order_acquire);
  constexpr std::size_t kHasLog = offsetof(dmem_plugin_host, log) + sizeof(host->log);
  if (host && host->struct_size >= kHasLog && host->log && message)
    host->log(host->user, level, message);
}

/// What DMEM_QUANTIZER_PLUGIN needs of a class. Calls on one instance are serialised by the host.
template <class T>
concept Quantizer = std::default_initializable<T> &&
    requires(T& q, const Params& params, Caps& caps, const dmem_plugin_tensor& in,
             dmem_plugin_tensor& out, std::uint64_t& bytes, void* stream) {
  { T::kId } -> std::convertible_to<const char*>;
  { T::kDisplay } -> std::convertible_to<const char*>;
  { T::kVersion } -> std::convertible_to<const char*>;
  { q.configure(params) } -> std::same_as<Outcome>;
  { q.caps(caps) } -> std::same_as<Outcome>;
  { q.stored_bytes(in, bytes) } -> std::same_as<Outcome>;
  { q.quantize(in, out, stream) } -> std::same_as<Outcome>;
  { q.dequantize(in, out, stream) } -> std::same_as<Outcome>;
  { q.linear(in, in, &in, out, stream) } -> std::same_as<Outcome>;
};

namespace detail {

/// Runs `body` (returning Outcome) so that nothing escapes: an exception becomes a status.
template <class Body>
std::int32_t guarded([[maybe_unused]] const char* what, dmem_plugin_error* err,
                     Body&& body) noexcept {
#if DMEM_PLUGIN_HAS_EXCEPTIONS
  try {
#endif
    const Outcome outcome = body();
    write_error(err, outcome.is_ok() ? std::string_view() : std::string_view(outcome.message()));
    return outcome.code();
#if DMEM_PLUGIN_HAS_EXCEPTIONS
  } catch (const std::bad_alloc&) {
    write_error(err, "out of memory");
    return DMEM_PLUGIN_OUT_OF_MEMORY;
  } catch (const std::exception& e) {
    // Building the message may itself fail; then the bare name still goes out.
    try {
      write_error(err, std::string(what) + ": " + e.what());
    } catch (...) {
      write_error(err, what);
    }
    return DMEM_PLUGIN_INTERNAL;
  } catch (...) {
    write_error(err, what);
    return DMEM_PLUGIN_INTERNAL;
  }
#endif
}

inline std::int32_t fail(dmem_plugin_error* err, std::int32_t code, const char* message) noexcept {
  write_error(err, message);
  return code;
}

/// A tensor the host passed is usable: present, covering every 1.0 field, rank in range.
inline const char* bad_tensor(const dmem_plugin_tensor* t) noexcept {
  if (!t) return "tensor pointer is NULL";
  if (t->struct_size < sizeof(dmem_plugin_tensor)) return "tensor struct_size is too small";
  if (t->rank > DMEM_PLUGIN_MAX_RANK) return "tensor rank exceeds DMEM_PLUGIN_MAX_RANK";
  return nullptr;
}

}  // namespace detail

/// The C tables for quantizer class T. Built-in plugins use these directly; a plugin library
/// exports them through DMEM_QUANTIZER_PLUGIN.
template <Quantizer T>
class QuantizerAdapter {
  struct Instance {
    T object;
    Caps caps;
    dmem_quantizer_caps c_caps{};
  };

  static std::int32_t create(const dmem_plugin_params* params, void** instance,
                             dmem_plugin_error* err) noexcept {
    if (!instance) return detail::fail(err, DMEM_PLUGIN_INVALID_ARGUMENT, "instance is NULL");
    *instance = nullptr;
    if (params && params->struct_size < sizeof(dmem_plugin_params))
      return detail::fail(err, DMEM_PLUGIN_INVALID_ARGUMENT, "params struct_size is too small");
    return detail::guarded("create", err, [&]() -> Outcome {
      std::unique_ptr<Instance> in(new (std::nothrow) Instance());
      if (!in) return {DMEM_PLUGIN_OUT_OF_MEMORY, "out of memory"};
      Outcome o = in->object.configure(Params(params));
      if (!o.is_ok()) return o;
      o = in->object.caps(in->caps);
      if (!o.is_ok()) return o;
      const Caps& c = in->caps;
      dmem_quantizer_caps& out = in->c_caps;
      out.struct_size = sizeof(dmem_quantizer_caps);
      out.exec_devices = c.exec_devices;
      out.storage_tiers = c.storage_tiers;
      out.flags = c.flags;
      out.input_dtypes = c.input_dtypes;
      out.min_sm = c.min_sm;
      out.block_size = c.block_size;
      out.quality_tier = c.quality_tier;
      out.cuda_arch_count = static_cast<std::uint32_t>(c.cuda_archs.size());
      out.cuda_archs = c.cuda_archs.empty() ? nullptr : c.cuda_archs.data();
      out.speed_factor = c.speed_factor;
      out.variant = c.variant.c_str();
      out.display = c.display.c_str();
      *instance = in.release();
      return Outcome::ok();
    });
  }

  static void destroy(void* instance) noexcept { delete static_cast<Instance*>(instance); }

  static const dmem_quantizer_caps* caps(void* instance) noexcept {
    return instance ? &static_cast<Instance*>(instance)->c_caps : nullptr;
  }

  static std::int32_t stored_bytes(void* instance, const dmem_plugin_tensor* tensor,
                                   std::uint64_t* bytes, dmem_plugin_error* err) noexcept {
    if (!instance || !bytes)
      return detail::fail(err, DMEM_PLUGIN_INVALID_ARGUMENT, "NULL argument");
    if (const char* bad = detail::bad_tensor(tensor))
      return detail::fail(err, DMEM_PLUGIN_INVALID_ARGUMENT, bad);
    return detail::guarded("stored_bytes", err, [&] {
      return static_cast<Instance*>(instance)->object.stored_bytes(*tensor, *bytes);
    });
  }

  static std::int32_t quantize(void* instance, const dmem_plugin_tensor* src,
                               dmem_plugin_tensor* packed, void* stream,
                               dmem_plugin_error* err) noexcept {
    if (!instance) return detail::fail(err, DMEM_PLUGIN_INVALID_ARGUMENT, "instance is NULL");
    for (const dmem_plugin_tensor* t : {src, static_cast<const dmem_plugin_tensor*>(packed)})
      if (const char* bad = detail::bad_tensor(t))
        return detail::fail(err, DMEM_PLUGIN_INVALID_ARGUMENT, bad);
    return detail::guarded("quantize", err, [&] {
      return static_cast<Instance*>(instance)->object.quantize(*src, *packed, stream);
    });
  }

  static std::int32_t dequantize(void* instance, const dmem_plugin_tensor* packed,
                                 dmem_plugin_tensor* dst, void* stream,
                                 dmem_plugin_error* err) noexcept {
    if (!instance) return detail::fail(err, DMEM_PLUGIN_INVALID_ARGUMENT, "instance is NULL");
    for (const dmem_plugin_tensor* t : {packed, static_cast<const dmem_plugin_tensor*>(dst)})
      if (const char* bad = detail::bad_tensor(t))
        return detail::fail(err, DMEM_PLUGIN_INVALID_ARGUMENT, bad);
    return detail::guarded("dequantize", err, [&] {
      return static_cast<Instance*>(instance)->object.dequantize(*packed, *dst, stream);
    });
  }

  static std::int32_t linear(void* instance, const dmem_plugin_tensor* x,
                             const dmem_plugin_tensor* weight, const dmem_plugin_tensor* bias,
                             dmem_plugin_tensor* y, void* stream, dmem_plugin_error* err) noexcept {
    if (!instance) return detail::fail(err, DMEM_PLUGIN_INVALID_ARGUMENT, "instance is NULL");
    for (const dmem_plugin_tensor* t : {x, weight, static_cast<const dmem_plugin_tensor*>(y)})
      if (const char* bad = detail::bad_tensor(t))
        return detail::fail(err, DMEM_PLUGIN_INVALID_ARGUMENT, bad);
    if (bias)
      if (const char* bad = detail::bad_tensor(bias))
        return detail::fail(err, DMEM_PLUGIN_INVALID_ARGUMENT, bad);
    return detail::guarded("linear", err, [&] {
      return static_cast<Instance*>(instance)->object.linear(*x, *weight, bias, *y, stream);
    });
  }

  static constexpr dmem_quantizer_vtable kVtable = {sizeof(dmem_quantizer_vtable),
                                                    0,
                                                    &create,
                                                    &destroy,
                                                    &caps,
                                                    &stored_bytes,
                                                    &quantize,
                                                    &dequantize,
                                                    &linear};
  static constexpr dmem_plugin_descriptor kDescriptor = {sizeof(dmem_plugin_descriptor),
                                                         DMEM_PLUGIN_ABI_MAJOR,
                                                         DMEM_PLUGIN_ABI_MINOR,
                                                         DMEM_PLUGIN_KIND_QUANTIZER,
                                                         0,
                                                         T::kId,
                                                         T::kDisplay,
                                                         T::kVersion,
                                                         &kVtable,
                                                         nullptr};
  static constexpr dmem_plugin_probe_info kProbe = {sizeof(dmem_plugin_probe_info),
                                                    DMEM_PLUGIN_ABI_MAJOR,
                                                    DMEM_PLUGIN_ABI_MINOR,
                                                    DMEM_PLUGIN_KIND_QUANTIZER,
                                                    0,
                                                    T::kId,
                                                    T::kVersion};

 public:
  [[nodiscard]] static const dmem_plugin_probe_info* probe() noexcept { return &kProbe; }
  [[nodiscard]] static const dmem_plugin_descriptor* descriptor() noexcept { return &kDescriptor; }
  [[nodiscard]] static const dmem_quantizer_vtable* vtable() noexcept { return &kVtable; }

  /// What dmem_plugin_entry does: keeps the host table for log() and hands out the descriptor.
  static std::int32_t entry(const dmem_plugin_host* host, const dmem_plugin_descriptor** out,
                            dmem_plugin_error* err) noexcept {
    if (!out) return detail::fail(err, DMEM_PLUGIN_INVALID_ARGUMENT, "descriptor pointer is NULL");
    *out = nullptr;
    constexpr std::size_t kHasVersion =
        offsetof(dmem_plugin_host, abi_minor) + sizeof(host->abi_minor);
    if (host && host->struct_size >= kHasVersion && host->abi_major != DMEM_PLUGIN_ABI_MAJOR)
      return detail::fail(err, DMEM_PLUGIN_UNSUPPORTED,
                          "host plugin ABI major differs from the one this plugin was built for");
    detail::host_slot().store(host, std::memory_order_release);
    // An optional one-time start-up check (CPU features, a driver): its refusal or exception
    // becomes the entry's status, so the host skips the plugin and goes on.
    if constexpr (requires {
                    { T::on_load() } -> std::same_as<Outcome>;
                  }) {
      const std::int32_t rc = detail::guarded("entry", err, [] { return T::on_load(); });
      if (rc != DMEM_PLUGIN_OK) return rc;
    }
    *out = &kDescriptor;
    write_error(err, {});
    return DMEM_PLUGIN_OK;
  }
};

}  // namespace plugin
}  // namespace v1
}  // namespace dmem

// A plugin library exports dmem_plugin_probe and dmem_plugin_entry. Compiled for static mode
// (dmem_add_plugin does it with DMEM_STATIC_PLUGINS=ON) the same macro defines
// dmem_plugin_probe_<name> and dmem_plugin_entry_<name> instead, not exported, so that many
// plugins link into one binary; the host lists them in its table.
#if defined(DMEM_PLUGIN_STATIC_NAME)
#define DMEM_PLUGIN_PROBE_FUNCTION DMEM_PLUGIN_CAT(dmem_plugin_probe_, DMEM_PLUGIN_STATIC_NAME)
#define DMEM_PLUGIN_ENTRY_FUNCTION DMEM_PLUGIN_CAT(dmem_plugin_entry_, DMEM_PLUGIN_STATIC_NAME)
#define DMEM_PLUGIN_ENTRY_LINKAGE DMEM_PLUGIN_EXTERN_C
#else
#define DMEM_PLUGIN_PROBE_FUNCTION dmem_plugin_probe
#define DMEM_PLUGIN_ENTRY_FUNCTION dmem_plugin_entry
#define DMEM_PLUGIN_ENTRY_LINKAGE DMEM_PLUGIN_EXPORT
#endif

/// Defines the two entry functions of a plugin for quantizer class `Class` (use once per
/// plugin, at global scope).
#define DMEM_QUANTIZER_PLUGIN(Class)                                                         \
  DMEM_PLUGIN_ENTRY_LINKAGE const dmem_plugin_probe_info* DMEM_PLUGIN_PROBE_FUNCTION(void) { \
    return ::dmem::plugin::QuantizerAdapter<Class>::probe();                                 \
  }                                                                                          \
  DMEM_PLUGIN_ENTRY_LINKAGE int32_t DMEM_PLUGIN_ENTRY_FUNCTION(                              \
      const dmem_plugin_host* dmem_host_, const dmem_plugin_descriptor** dmem_descriptor_,   \
      dmem_plugin_error* dmem_err_) {                                                        \
    return ::dmem::plugin::QuantizerAdapter<Class>::entry(dmem_host_, dmem_descriptor_,      \
                                                          dmem_err_);                        \
  }
