// The gguf quantizer: GGML block types (q8_0, q4_0, q4_1, q5_0, q5_1, q2_k, q3_k, q4_k, q5_k,
// q6_k, iq4_nl, mxfp4) as a dmem quantizer plugin. Packed data is exactly what a GGUF file
// holds for the tensor: its rows (the last dimension) one after the other, each a whole number
// of blocks, so tensors read from a .gguf are handed over as they are.
#pragma once

#include <cstdint>

#include "dmem/plugin/plugin.hpp"
#include "gguf_types.hpp"

namespace dmem_gguf {

class GgufQuantizer {
 public:
  static constexpr const char* kId = "dmem.quantizer.gguf";
  static constexpr const char* kDisplay = "gguf (GGML block quantization)";
  static constexpr const char* kVersion = "1.0.0";

  /// Parameter `type` (default q8_0).
  dmem::plugin::Outcome configure(const dmem::plugin::Params& params);
  dmem::plugin::Outcome caps(dmem::plugin::Caps& caps) const;
  /// rows x (cols / block) x block bytes; the last dimension must be a whole number of blocks.
  dmem::plugin::Outcome stored_bytes(const dmem_plugin_tensor& t, std::uint64_t& bytes) const;
  /// f32, f16 or bf16 on the CPU to blocks, with ggml's reference quantizer.
  dmem::plugin::Outcome quantize(const dmem_plugin_tensor& src, dmem_plugin_tensor& packed,
                                 void* stream) const;
  /// Blocks to f32, f16 or bf16: on the CPU for every type, on CUDA for the types with kernels.
  dmem::plugin::Outcome dequantize(const dmem_plugin_tensor& packed, dmem_plugin_tensor& dst,
                                   void* stream) const;
  /// y = x W^T + b in f32 (cpu_linear.hpp; CUDA: gguf_cuda.hpp).
  dmem::plugin::Outcome linear(const dmem_plugin_tensor& x, const dmem_plugin_tensor& weight,
                               const dmem_plugin_tensor* bias, dmem_plugin_tensor& y,
                               void* stream) const;

 private:
  dmem::plugin::Outcome check_packed(const dmem_plugin_tensor& packed) const;
  const GgufType* type_ = nullptr;
};

}  // namespace dmem_gguf
