// LLM.int8 (bitsandbytes Linear8bitLt) as a dmem quantizer plugin: int8 weight rows with their
// f32 absmax (SCB), activation outliers above `threshold` on a 16-bit path, the rest an int8
// GEMM with int32 accumulation (cuBLASLt). Runs on CUDA only; quantize and dequantize also run
// on the CPU, for conversion and tests.
//
// Packed layout (stored_bytes = 4 * rows + rows * cols + 1, the planner's figure):
//   SCB f32[rows] | CB int8[rows, cols] (row-major, bitsandbytes' "row" format) | weight_format
//   u8 = 0. Rows are the first dimension, cols the product of the others (a Linear's [out, in]).
// A bitsandbytes checkpoint's `weight` (int8), `SCB` and `weight_format` tensors are these
// three pieces: see checkpoint_layout.hpp.
#pragma once

#include <cstdint>

#include "dmem/plugin/plugin.hpp"

namespace dmem_bnb {

class BnbInt8Quantizer {
 public:
  static constexpr const char* kId = "dmem.quantizer.bnb_int8";
  static constexpr const char* kDisplay = "bitsandbytes LLM.int8";
  static constexpr const char* kVersion = "1.0.0";

  /// Parameter `threshold` (default 6.0; 0 turns the outlier path off).
  dmem::plugin::Outcome configure(const dmem::plugin::Params& params);
  dmem::plugin::Outcome caps(dmem::plugin::Caps& caps) const;
  dmem::plugin::Outcome stored_bytes(const dmem_plugin_tensor& t, std::uint64_t& bytes) const;
  /// f32, f16 or bf16 on the CPU, each value first rounded to f16 as bitsandbytes does.
  dmem::plugin::Outcome quantize(const dmem_plugin_tensor& src, dmem_plugin_tensor& packed,
                                 void* stream) const;
  /// To f32, f16 or bf16, on the CPU or CUDA.
  dmem::plugin::Outcome dequantize(const dmem_plugin_tensor& packed, dmem_plugin_tensor& dst,
                                   void* stream) const;
  /// CUDA only: x, y (and bias) f32, f16 or bf16, all of one type.
  dmem::plugin::Outcome linear(const dmem_plugin_tensor& x, const dmem_plugin_tensor& weight,
                               const dmem_plugin_tensor* bias, dmem_plugin_tensor& y,
                               void* stream) const;

 private:
  dmem::plugin::Outcome check_packed(const dmem_plugin_tensor& packed) const;
  float threshold_ = 6.0f;
};

}  // namespace dmem_bnb
