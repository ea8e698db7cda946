// Shape helpers the stock plugins share: a tensor seen as rows x columns (the last dimension is a
// row), its description for messages ("f32 [3072, 3072]"), and element sizes.
#pragma once

#include <cstdint>
#include <string>

#include "dmem/dtype.hpp"
#include "dmem/plugin/plugin.hpp"

namespace dmem_plugins {

struct RowsCols {
  std::uint64_t rows = 1;
  std::uint64_t cols = 1;
};

/// Rows are every dimension but the last; a rank-0 tensor is one row of one value.
[[nodiscard]] inline RowsCols rows_cols(const dmem_plugin_tensor& t) noexcept {
  RowsCols s;
  if (t.rank == 0) return s;
  s.cols = t.shape[t.rank - 1];
  for (std::uint32_t i = 0; i + 1 < t.rank; ++i) s.rows *= t.shape[i];
  return s;
}

[[nodiscard]] inline const char* dtype_label(std::uint32_t dtype) noexcept {
  switch (dtype) {
    case DMEM_PLUGIN_DTYPE_F32:
      return "f32";
    case DMEM_PLUGIN_DTYPE_F16:
      return "f16";
    case DMEM_PLUGIN_DTYPE_BF16:
      return "bf16";
    case DMEM_PLUGIN_DTYPE_F64:
      return "f64";
    case DMEM_PLUGIN_DTYPE_F8_E4M3:
      return "f8_e4m3";
    case DMEM_PLUGIN_DTYPE_F8_E5M2:
      return "f8_e5m2";
    case DMEM_PLUGIN_DTYPE_I8:
      return "i8";
    case DMEM_PLUGIN_DTYPE_U8:
      return "u8";
    case DMEM_PLUGIN_DTYPE_I16:
      return "i16";
    case DMEM_PLUGIN_DTYPE_I32:
      return "i32";
    case DMEM_PLUGIN_DTYPE_I64:
      return "i64";
    default:
      return "unknown dtype";
  }
}

/// "f32 [3072, 64]": how messages name a tensor (the ABI carries no tensor name; the host adds
/// it to the Status it builds from the message).
[[nodiscard]] inline std::string describe(const dmem_plugin_tensor& t) {
  std::string s = dtype_label(t.dtype);
  s += " [";
  for (std::uint32_t i = 0; i < t.rank && i < DMEM_PLUGIN_MAX_RANK; ++i) {
    if (i) s += ", ";
    s += std::to_string(t.shape[i]);
  }
  s += ']';
  return s;
}

/// The dmem dtype of a float ABI dtype code (f32, f16, bf16), or nullopt-like false.
[[nodiscard]] inline bool float_dtype(std::uint32_t code, dmem::DType& out) noexcept {
  switch (code) {
    case DMEM_PLUGIN_DTYPE_F32:
      out = dmem::DType::f32;
      return true;
    case DMEM_PLUGIN_DTYPE_F16:
      out = dmem::DType::f16;
      return true;
    case DMEM_PLUGIN_DTYPE_BF16:
      out = dmem::DType::bf16;
      return true;
    default:
      return false;
  }
}

}  // namespace dmem_plugins
