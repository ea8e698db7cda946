// QuantizerInstance: a configured quantizer from a plugin, ready to size, pack, unpack and run
// weights. Made by PluginRegistry::create_quantizer(); keeps its plugin library loaded.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>

#include "dmem/dtype.hpp"
#include "dmem/quantizer.hpp"
#include "dmem/status.hpp"

namespace dmem {
inline namespace v1 {

/// A tensor in host memory as a quantizer sees it. For packed data, dtype and shape describe the
/// original tensor and data/nbytes the stored bytes.
struct HostTensor {
  DType dtype = DType::f32;
  std::span<const std::uint64_t> shape;
  const void* data = nullptr;
  std::uint64_t nbytes = 0;
};

class QuantizerInstance {
 public:
  QuantizerInstance() noexcept;
  QuantizerInstance(QuantizerInstance&&) noexcept;
  QuantizerInstance& operator=(QuantizerInstance&&) noexcept;
  QuantizerInstance(const QuantizerInstance&) = delete;
  QuantizerInstance& operator=(const QuantizerInstance&) = delete;
  ~QuantizerInstance();

  [[nodiscard]] bool valid() const noexcept { return impl_ != nullptr; }
  /// The plugin's capabilities for the parameters it was created with.
  [[nodiscard]] const QuantizerCaps& caps() const noexcept;
  /// True when the quantizer takes input of this dtype (otherwise convert to f32 first).
  [[nodiscard]] bool accepts(DType dtype) const noexcept;

  /// Exact stored bytes of a tensor of this dtype and shape.
  [[nodiscard]] Result<std::uint64_t> stored_bytes(
      DType dtype, std::span<const std::uint64_t> shape) const noexcept;
  /// Packs `src` into `packed` (stored_bytes() of it). CPU memory.
  [[nodiscard]] Status quantize(const HostTensor& src, void* packed,
                                std::uint64_t packed_bytes) const noexcept;
  /// Unpacks `packed` into `dst` of dtype `dst_dtype` (same shape). CPU memory.
  [[nodiscard]] Status dequantize(const HostTensor& packed, DType dst_dtype, void* dst,
                                  std::uint64_t dst_bytes) const noexcept;
  /// The same in device memory: the plugin's CUDA kernel, queued on `stream` (a cudaStream_t)
  /// and asynchronous. Errc::unsupported when the plugin runs on the CPU only.
  [[nodiscard]] Status dequantize_on_device(const HostTensor& packed, DType dst_dtype, void* dst,
                                            std::uint64_t dst_bytes, void* stream) const noexcept;
  /// y[tokens, out] = x[tokens, in] · Wᵀ (+ bias), W the packed [out, in] weight. CPU, f32 x/y.
  [[nodiscard]] Status linear(const HostTensor& packed_weight, const HostTensor* bias,
                              const float* x, std::size_t tokens, float* y) const noexcept;

  struct Impl;

 private:
  friend class PluginRegistry;
  explicit QuantizerInstance(std::shared_ptr<Impl> impl) noexcept;
  std::shared_ptr<Impl> impl_;
};

}  // namespace v1
}  // namespace dmem
