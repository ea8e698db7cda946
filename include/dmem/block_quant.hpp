// GGML block types to and from f32: dequantization of the common block layouts and ggml's
// reference quantizers for the simple ones. Bit-exact with ggml / gguf-py.
#pragma once

#include <cstddef>

#include "dmem/dtype.hpp"
#include "dmem/status.hpp"

namespace dmem {
inline namespace v1 {

/// Types dequantize() handles: q4_0 q4_1 q5_0 q5_1 q8_0 q2_k q3_k q4_k q5_k q6_k iq4_nl mxfp4.
[[nodiscard]] bool can_dequantize(DType type) noexcept;
/// Types quantize() handles with ggml's reference quantizer: q4_0 q4_1 q5_0 q5_1 q8_0.
[[nodiscard]] bool can_quantize(DType type) noexcept;

/// `count` values (a whole number of blocks) from packed blocks to f32.
[[nodiscard]] Status dequantize(DType type, const void* blocks, float* out,
                                std::size_t count) noexcept;
/// `count` f32 values (a whole number of blocks) to packed blocks.
[[nodiscard]] Status quantize(DType type, const float* in, void* blocks,
                              std::size_t count) noexcept;

}  // namespace v1
}  // namespace dmem
