// QuantizerInstance: the host side of a plugin quantizer. Translates dmem types into the C ABI,
// serialises calls on the instance and turns every status into a Status naming the plugin.
#include "dmem/quantizer_instance.hpp"

#include <algorithm>
#include <cstring>
#include <string>

#include "plugin_host/plugin_error.hpp"
#include "plugin_host/quantizer_impl.hpp"

namespace dmem {
inline namespace v1 {
namespace {

// A plugin call's error, turned into a Status naming the quantizer and the call.
struct ErrorBuffer : detail::PluginError {
  Status status(const std::string& id, const char* call, std::int32_t rc) {
    const char* said = message();
    std::string what = "quantizer '";
    what += id;
    what += "' ";
    what += call;
    what += " failed (status ";
    what += std::to_string(rc);
    what += "): ";
    what += said[0] != '\0' ? said : "no message";
    const Errc code = rc == DMEM_PLUGIN_UNSUPPORTED        ? Errc::unsupported
                      : rc == DMEM_PLUGIN_INVALID_ARGUMENT ? Errc::invalid_argument
                      : rc == DMEM_PLUGIN_OUT_OF_MEMORY    ? Errc::out_of_memory
                                                           : Errc::internal;
    return Status(code, std::move(what)).with_rule("plugin.call");
  }
};

Status to_abi(const HostTensor& t, dmem_plugin_tensor& out) {
  out = {};
  out.struct_size = sizeof(out);
  out.dtype = detail::plugin_dtype(t.dtype);
  if (out.dtype == 0) {
    return Status(Errc::unsupported,
                  "the plugin ABI has no dtype " + std::string(dtype_name(t.dtype)))
        .with_rule("plugin.dtype")
        .with_hint("convert the tensor to f32, f16 or bf16 first");
  }
  if (t.shape.size() > DMEM_PLUGIN_MAX_RANK) {
    return Status(Errc::unsupported, "rank " + std::to_string(t.shape.size()) +
                                         " exceeds the plugin ABI's " +
                                         std::to_string(DMEM_PLUGIN_MAX_RANK))
        .with_rule("plugin.dtype");
  }
  out.rank = static_cast<std::uint32_t>(t.shape.size());
  std::copy(t.shape.begin(), t.shape.end(), out.shape);
  out.device = DMEM_PLUGIN_DEVICE_CPU;
  out.data = const_cast<void*>(t.data);  // the ABI has one tensor type for inputs and outputs
  out.nbytes = t.nbytes;
  return Status::ok();
}

Status no_instance() {
  return Status(Errc::invalid_argument, "use of an empty QuantizerInstance")
      .with_rule("plugin.call");
}

}  // namespace

QuantizerInstance::Impl::~Impl() {
  if (vtable != nullptr && instance != nullptr) vtable->destroy(instance);
}

QuantizerInstance::QuantizerInstance() noexcept = default;
QuantizerInstance::QuantizerInstance(std::shared_ptr<Impl> impl) noexcept
    : impl_(std::move(impl)) {}
QuantizerInstance::QuantizerInstance(QuantizerInstance&&) noexcept = default;
QuantizerInstance& QuantizerInstance::operator=(QuantizerInstance&&) noexcept = default;
QuantizerInstance::~QuantizerInstance() = default;

const QuantizerCaps& QuantizerInstance::caps() const noexcept {
  static const QuantizerCaps none;
  return impl_ ? impl_->caps : none;
}

bool QuantizerInstance::accepts(DType dtype) const noexcept {
  const std::uint32_t code = detail::plugin_dtype(dtype);
  return impl_ && code != 0 && (impl_->input_dtypes & DMEM_PLUGIN_DTYPE_BIT(code)) != 0;
}

Result<std::uint64_t> QuantizerInstance::stored_bytes(
    DType dtype, std::span<const std::uint64_t> shape) const noexcept {
  if (!impl_) return no_instance();
  dmem_plugin_tensor t{};
  DMEM_TRY(to_abi(HostTensor{dtype, shape, nullptr, 0}, t));
  ErrorBuffer e;
  std::uint64_t bytes = 0;
  std::lock_guard<std::mutex> lock(impl_->mu);
  const std::int32_t rc = impl_->vtable->stored_bytes(impl_->instance, &t, &bytes, &e.err);
  if (rc != DMEM_PLUGIN_OK) return e.status(impl_->id, "stored_bytes", rc);
  return bytes;
}

Status QuantizerInstance::quantize(const HostTensor& src, void* packed,
                                   std::uint64_t packed_bytes) const noexcept {
  if (!impl_) return no_instance();
  dmem_plugin_tensor in{};
  dmem_plugin_tensor out{};
  DMEM_TRY(to_abi(src, in));
  DMEM_TRY(to_abi(HostTensor{src.dtype, src.shape, packed, packed_bytes}, out));
  ErrorBuffer e;
  std::lock_guard<std::mutex> lock(impl_->mu);
  const std::int32_t rc = impl_->vtable->quantize(impl_->instance, &in, &out, nullptr, &e.err);
  return rc == DMEM_PLUGIN_OK ? Status::ok() : e.status(impl_->id, "quantize", rc);
}

Status QuantizerInstance::dequantize(const HostTensor& packed, DType dst_dtype, void* dst,
                                     std::uint64_t dst_bytes) const noexcept {
  if (!impl_) return no_instance();
  dmem_plugin_tensor in{};
  dmem_plugin_tensor out{};
  DMEM_TRY(to_abi(packed, in));
  DMEM_TRY(to_abi(HostTensor{dst_dtype, packed.shape, dst, dst_bytes}, out));
  ErrorBuffer e;
  std::lock_guard<std::mutex> lock(impl_->mu);
  const std::int32_t rc = impl_->vtable->dequantize(impl_->instance, &in, &out, nullptr, &e.err);
  return rc == DMEM_PLUGIN_OK ? Status::ok() : e.status(impl_->id, "dequantize", rc);
}

Status QuantizerInstance::dequantize_on_device(const HostTensor& packed, DType dst_dtype, void* dst,
                                               std::uint64_t dst_bytes,
                                               void* stream) const noexcept {
  if (!impl_) return no_instance();
  if ((impl_->caps.exec_devices & kDeviceCuda) == 0) {
    return Status(Errc::unsupported, "quantizer '" + impl_->id + "' has no CUDA kernels")
        .with_rule("runtime.quantizer.device")
        .with_hint("run this storage on the CPU device, or choose a quantizer with CUDA kernels");
  }
  dmem_plugin_tensor in{};
  dmem_plugin_tensor out{};
  DMEM_TRY(to_abi(packed, in));
  DMEM_TRY(to_abi(HostTensor{dst_dtype, packed.shape, dst, dst_bytes}, out));
  in.device = DMEM_PLUGIN_DEVICE_CUDA;
  out.device = DMEM_PLUGIN_DEVICE_CUDA;
  ErrorBuffer e;
  std::lock_guard<std::mutex> lock(impl_->mu);
  const std::int32_t rc = impl_->vtable->dequantize(impl_->instance, &in, &out, stream, &e.err);
  return rc == DMEM_PLUGIN_OK ? Status::ok() : e.status(impl_->id, "dequantize", rc);
}

Status QuantizerInstance::linear(const HostTensor& packed_weight, const HostTensor* bias,
                                 const float* x, std::size_t tokens, float* y) const noexcept {
  if (!impl_) return no_instance();
  if (packed_weight.shape.size() != 2) {
    return Status(Errc::invalid_argument, "linear needs a 2-D [out, in] weight")
        .with_rule("plugin.call");
  }
  const std::uint64_t out_f = packed_weight.shape[0];
  const std::uint64_t in_f = packed_weight.shape[1];
  const std::uint64_t x_shape[2] = {tokens, in_f};
  const std::uint64_t y_shape[2] = {tokens, out_f};
  dmem_plugin_tensor w{}, b{}, xt{}, yt{};
  DMEM_TRY(to_abi(packed_weight, w));
  if (bias != nullptr) DMEM_TRY(to_abi(*bias, b));
  DMEM_TRY(to_abi(HostTensor{DType::f32, x_shape, x, tokens * in_f * 4}, xt));
  DMEM_TRY(to_abi(HostTensor{DType::f32, y_shape, y, tokens * out_f * 4}, yt));
  ErrorBuffer e;
  std::lock_guard<std::mutex> lock(impl_->mu);
  const std::int32_t rc = impl_->vtable->linear(
      impl_->instance, &xt, &w, bias != nullptr ? &b : nullptr, &yt, nullptr, &e.err);
  return rc == DMEM_PLUGIN_OK ? Status::ok() : e.status(impl_->id, "linear", rc);
}

}  // namespace v1
}  // namespace dmem

namespace dmem::detail {

std::uint32_t plugin_dtype(DType dtype) noexcept {
  switch (dtype) {
    case DType::f32:
      return DMEM_PLUGIN_DTYPE_F32;
    case DType::f16:
      return DMEM_PLUGIN_DTYPE_F16;
    case DType::bf16:
      return DMEM_PLUGIN_DTYPE_BF16;
    case DType::f64:
      return DMEM_PLUGIN_DTYPE_F64;
    case DType::f8_e4m3:
      return DMEM_PLUGIN_DTYPE_F8_E4M3;
    case DType::f8_e5m2:
      return DMEM_PLUGIN_DTYPE_F8_E5M2;
    case DType::i8:
      return DMEM_PLUGIN_DTYPE_I8;
    case DType::u8:
      return DMEM_PLUGIN_DTYPE_U8;
    case DType::i16:
      return DMEM_PLUGIN_DTYPE_I16;
    case DType::i32:
      return DMEM_PLUGIN_DTYPE_I32;
    case DType::i64:
      return DMEM_PLUGIN_DTYPE_I64;
    default:
      return 0;
  }
}

Result<std::shared_ptr<QuantizerInstance::Impl>> create_quantizer_impl(
    const PluginInfo& info, const dmem_quantizer_vtable& vtable,
    std::shared_ptr<const void> library,
    const std::vector<std::pair<std::string, std::string>>& params) noexcept {
  std::vector<const char*> keys;
  std::vector<const char*> values;
  for (const auto& [k, v] : params) {
    keys.push_back(k.c_str());
    values.push_back(v.c_str());
  }
  dmem_plugin_params p{};
  p.struct_size = sizeof(p);
  p.count = static_cast<std::uint32_t>(params.size());
  p.keys = keys.data();
  p.values = values.data();
  PluginError error;
  void* instance = nullptr;
  const std::int32_t rc = vtable.create(&p, &instance, &error.err);
  const char* message = error.message();
  if (rc != DMEM_PLUGIN_OK || instance == nullptr) {
    std::string what = "quantizer '";
    what += info.id;
    what += "' refused its parameters: ";
    what += message[0] != '\0' ? message : "no message";
    return Status(rc == DMEM_PLUGIN_UNSUPPORTED ? Errc::unsupported : Errc::invalid_argument,
                  std::move(what))
        .with_rule("plugin.create")
        .with_file(info.path)
        .with_hint("check the storage's params against the plugin's README");
  }
  auto impl = std::make_shared<QuantizerInstance::Impl>();
  impl->library = std::move(library);
  impl->vtable = &vtable;
  impl->instance = instance;
  impl->id = info.id;
  // Capabilities of this configuration (parameters can change them, e.g. a gguf type).
  const dmem_quantizer_caps* c = vtable.caps(instance);
  impl->caps = info.caps;
  if (c != nullptr) {
    impl->caps.exec_devices = c->exec_devices;
    impl->caps.storage_tiers = c->storage_tiers;
    impl->caps.min_sm = c->min_sm;
    impl->caps.quality = static_cast<QualityTier>(c->quality_tier);
    impl->caps.speed_factor = c->speed_factor;
    impl->caps.variant = c->variant != nullptr ? c->variant : "";
    if (c->display != nullptr && c->display[0] != '\0')
      impl->caps.display.assign(c->display, strnlen(c->display, 256));
    impl->caps.moves_packed = (c->flags & DMEM_PLUGIN_QFLAG_MOVES_PACKED) != 0;
    impl->caps.is_cast = (c->flags & DMEM_PLUGIN_QFLAG_IS_CAST) != 0;
    impl->caps.needs_cublaslt = (c->flags & DMEM_PLUGIN_QFLAG_NEEDS_CUBLASLT) != 0;
    impl->caps.block_size = c->block_size;
    if (c->cuda_archs != nullptr && c->cuda_arch_count <= 64)  // the registry's own bound
      impl->caps.cuda_archs.assign(c->cuda_archs, c->cuda_archs + c->cuda_arch_count);
    else
      impl->caps.cuda_archs.clear();
    impl->input_dtypes = c->input_dtypes;
  } else {
    impl->input_dtypes = info.input_dtypes;
  }
  impl->caps.params = params;
  return impl;
}

}  // namespace dmem::detail
