// Linear layers of packed (quantized) weights on a GPU: the component's quantizer plugin unpacks
// the weight with its CUDA kernel into the session's unpack buffer, in the compute dtype and on
// the device's compute stream, and the device's GEMM (cuBLASLt) runs it as any 16-bit weight.
// That is what bitsandbytes and GGUF layers in diffusers do too: the packed bytes are what rests
// and moves, one layer at a time is unpacked.
#include <string>

#include "runtime/nvtx_range.hpp"
#include "runtime/session_impl.hpp"

namespace dmem {
inline namespace v1 {

Status Session::Impl::packed_device_linear(const Acquired& handle, const TensorView& w,
                                           const TensorView* b, const float* x, std::size_t tokens,
                                           float* y) noexcept {
  const std::string& name = *w.name;
  std::uint32_t c = 0;
  while (c < layout.components.size() && layout.components[c].name != handle.component()) ++c;
  const QuantizerInstance* q = c == layout.components.size() ? nullptr : packed_quantizer(c, name);
  if (q == nullptr)
    return Status(Errc::internal, "a packed weight without its quantizer").with_tensor(name);
  const DType to = layout.components[c].compute_dtype;
  const std::uint64_t out = (*w.shape)[0], in = (*w.shape)[1];
  const auto bytes = dtype_bytes(to, out * in);
  if (!bytes)
    return Status(Errc::internal, "no byte size for the unpacked weight").with_tensor(name);

  std::lock_guard<std::mutex> serial(unpack_mu);
  if (*bytes > unpack_bytes) {
    if (unpack_scratch != nullptr) {
      device->free(unpack_scratch, unpack_bytes);
      std::lock_guard<std::mutex> lock(mu);
      device_store.release(unpack_bytes);
    }
    unpack_scratch = nullptr;
    unpack_bytes = 0;
    bool reserved = false;
    {
      std::lock_guard<std::mutex> lock(mu);
      reserved = reserve_device(*bytes, true);
    }
    if (!reserved) {
      std::string message = "no device room to unpack '";
      message += name;
      message += "' (";
      message += std::to_string(*bytes);
      message += " bytes of ";
      message += dtype_name(to);
      message += ") beside what other handles keep";
      return Status(Errc::out_of_memory, std::move(message))
          .with_tensor(name)
          .with_rule("runtime.budget.device")
          .with_hint("raise the device budget by the largest quantized layer in the compute dtype");
    }
    auto memory = allocate_device(*bytes, true, name, nullptr);
    if (!memory) {
      std::lock_guard<std::mutex> lock(mu);
      device_store.release(*bytes);
      Status failed = memory.status();
      return std::move(failed).with_tensor(name);
    }
    unpack_scratch = memory.value();
    unpack_bytes = *bytes;
  }

  const detail::NvtxRange nvtx(detail::NvtxKind::compute, name.c_str());
  const std::uint64_t t0 = trace.now_ns();
  Status status = q->dequantize_on_device(HostTensor{w.dtype, *w.shape, w.data, w.nbytes}, to,
                                          unpack_scratch, *bytes, device->compute_stream());
  if (status) {
    detail::LinearArgs args;
    args.weight = unpack_scratch;
    args.weight_dtype = to;
    args.out = out;
    args.in = in;
    if (b != nullptr && b->shape->size() == 1 && (*b->shape)[0] == out) {
      args.bias = b->data;
      args.bias_dtype = b->dtype;
    }
    args.x = x;
    args.tokens = tokens;
    args.y = y;
    status = device->linear(args);  // same stream: after the unpack, and waited for
  }
  if (trace.enabled()) trace.span(lane_compute, "compute", name, t0, trace.now_ns());
  if (!status) return std::move(status).with_tensor(name);
  return status;
}

}  // namespace v1
}  // namespace dmem
