// Buffer kernels for the conversions the loader and the CPU linear path hit for every weight:
// narrow floats to f32, f32 to bf16/f16, and bf16/f16/f32 to fp8 e4m3. One table per CPU path;
// every path gives the same bits (float_bits.hpp defines them). Buffers need no alignment.
#pragma once

#include <cstddef>

#include "core/cpu_features.hpp"

namespace dmem::detail {

using ConvertFn = void (*)(const void* src, void* dst, std::size_t count) noexcept;

struct ConvertKernels {
  ConvertFn bf16_to_f32;
  ConvertFn f16_to_f32;
  ConvertFn f8_e4m3_to_f32;
  ConvertFn f8_e5m2_to_f32;
  ConvertFn f32_to_bf16;
  ConvertFn f32_to_f16;
  // To fp8 e4m3 (layerwise casting at load time). The scalar path has no 16-bit ones: those go
  // through an exact 64 KiB table, which is as fast there.
  ConvertFn f32_to_f8_e4m3;
  ConvertFn bf16_to_f8_e4m3;
  ConvertFn f16_to_f8_e4m3;
};

[[nodiscard]] const ConvertKernels& convert_kernels_scalar() noexcept;
/// nullptr when the build has no AVX2 code (not x86-64, or not gcc/clang).
[[nodiscard]] const ConvertKernels* convert_kernels_avx2() noexcept;
/// The kernels for cpu_path().
[[nodiscard]] const ConvertKernels& convert_kernels() noexcept;

}  // namespace dmem::detail
