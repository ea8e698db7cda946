// A complete quantizer written against the C++ plugin adapter: symmetric int8 with one f32 scale
// per row, on the CPU. The ABI tests drive it through the C function table and
// docs/plugin-guide.md shows it as the example. It never throws, so it also builds with
// -fno-exceptions.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>

#include "dmem/plugin/plugin.hpp"

namespace dmem_test {

class Int8RowQuantizer {
 public:
  static constexpr const char* kId = "dmem.quantizer.int8_row_test";
  static constexpr const char* kDisplay = "int8 per row (test)";
  static constexpr const char* kVersion = "1.0.0";

  dmem::plugin::Outcome configure(const dmem::plugin::Params& params) {
    for (std::size_t i = 0; i < params.size(); ++i)
      if (params.key(i) != "bits")
        return {DMEM_PLUGIN_INVALID_ARGUMENT, "unknown parameter '" + std::string(params.key(i)) +
                                                  "' (this quantizer takes: bits)"};
    if (params.get("bits", "8") != "8")
      return {DMEM_PLUGIN_UNSUPPORTED, "only bits=8 is implemented"};
    return dmem::plugin::Outcome::ok();
  }

  dmem::plugin::Outcome caps(dmem::plugin::Caps& caps) const {
    caps.exec_devices = DMEM_PLUGIN_DEVICE_CPU;
    caps.input_dtypes = DMEM_PLUGIN_DTYPE_BIT(DMEM_PLUGIN_DTYPE_F32);
    caps.quality_tier = DMEM_PLUGIN_QUALITY_INT8;
    caps.speed_factor = 1.5;
    caps.display = kDisplay;
    return dmem::plugin::Outcome::ok();
  }

  // Rows are every dimension but the last: one f32 scale per row, then the int8 codes.
  dmem::plugin::Outcome stored_bytes(const dmem_plugin_tensor& t, std::uint64_t& bytes) const {
    if (auto o = accept(t); !o.is_ok()) return o;
    const std::uint64_t n = elements(t);
    bytes = n == 0 ? 0 : 4 * rows_cols(t).rows + n;
    return dmem::plugin::Outcome::ok();
  }

  dmem::plugin::Outcome quantize(const dmem_plugin_tensor& src, dmem_plugin_tensor& packed,
                                 void* /*stream*/) const {
    std::uint64_t need = 0;
    if (auto o = stored_bytes(src, need); !o.is_ok()) return o;
    if (auto o = check_cpu(src, "source"); !o.is_ok()) return o;
    if (src.nbytes < element_bytes(src) || packed.nbytes < need || (need && !packed.data))
      return {DMEM_PLUGIN_INVALID_ARGUMENT, "quantize: buffer smaller than the tensor"};
    if (elements(src) == 0) return dmem::plugin::Outcome::ok();
    const Shape s = rows_cols(src);
    const float* x = static_cast<const float*>(src.data);
    float* scales = static_cast<float*>(packed.data);
    auto* codes = codes_of(scales, s);
    for (std::uint64_t r = 0; r < s.rows; ++r) {
      float absmax = 0.0f;
      for (std::uint64_t c = 0; c < s.cols; ++c)
        absmax = std::max(absmax, std::fabs(x[r * s.cols + c]));
      const float scale = absmax / 127.0f;
      scales[r] = scale;
      for (std::uint64_t c = 0; c < s.cols; ++c) {
        const float q = scale > 0.0f ? std::nearbyint(x[r * s.cols + c] / scale) : 0.0f;
        codes[r * s.cols + c] = static_cast<std::int8_t>(std::clamp(q, -127.0f, 127.0f));
      }
    }
    return dmem::plugin::Outcome::ok();
  }

  dmem::plugin::Outcome dequantize(const dmem_plugin_tensor& packed, dmem_plugin_tensor& dst,
                                   void* /*stream*/) const {
    if (auto o = check_packed(packed); !o.is_ok()) return o;
    if (auto o = check_cpu(dst, "destination"); !o.is_ok()) return o;
    if (dst.rank != packed.rank || !std::equal(dst.shape, dst.shape + dst.rank, packed.shape) ||
        dst.nbytes < element_bytes(dst))
      return {DMEM_PLUGIN_INVALID_ARGUMENT, "dequantize: destination shape or size differs"};
    if (elements(packed) == 0) return dmem::plugin::Outcome::ok();
    const Shape s = rows_cols(packed);
    float* scales = static_cast<float*>(packed.data);
    const std::int8_t* codes = codes_of(scales, s);
    float* y = static_cast<float*>(dst.data);
    for (std::uint64_t r = 0; r < s.rows; ++r)
      for (std::uint64_t c = 0; c < s.cols; ++c)
        y[r * s.cols + c] = static_cast<float>(codes[r * s.cols + c]) * scales[r];
    return dmem::plugin::Outcome::ok();
  }

  // y[n, out] = x[n, in] * W[out, in]^T + bias[out]
  dmem::plugin::Outcome linear(const dmem_plugin_tensor& x, const dmem_plugin_tensor& weight,
                               const dmem_plugin_tensor* bias, dmem_plugin_tensor& y,
                               void* /*stream*/) const {
    if (auto o = check_packed(weight); !o.is_ok()) return o;
    for (const dmem_plugin_tensor* t : {&x, static_cast<const dmem_plugin_tensor*>(&y), bias})
      if (t)
        if (auto o = check_cpu(*t, "linear operand"); !o.is_ok()) return o;
    if (weight.rank != 2 || x.rank == 0 || y.rank != x.rank)
      return {DMEM_PLUGIN_INVALID_ARGUMENT, "linear: weight must be [out, in], y like x"};
    const std::uint64_t out = weight.shape[0], in = weight.shape[1];
    const Shape xs = rows_cols(x), ys = rows_cols(y);
    if (xs.cols != in || ys.cols != out || ys.rows != xs.rows ||
        (bias && (bias->rank != 1 || bias->shape[0] != out)) || x.nbytes < element_bytes(x) ||
        y.nbytes < element_bytes(y) || (bias && bias->nbytes < element_bytes(*bias)))
      return {DMEM_PLUGIN_INVALID_ARGUMENT, "linear: shapes do not agree"};
    if (elements(x) == 0 || out == 0) return dmem::plugin::Outcome::ok();
    float* scales = static_cast<float*>(weight.data);
    const std::int8_t* codes = codes_of(scales, Shape{out, in});
    const float* xv = static_cast<const float*>(x.data);
    const float* bv = bias ? static_cast<const float*>(bias->data) : nullptr;
    float* yv = static_cast<float*>(y.data);
    for (std::uint64_t n = 0; n < xs.rows; ++n)
      for (std::uint64_t o = 0; o < out; ++o) {
        float acc = 0.0f;
        for (std::uint64_t k = 0; k < in; ++k)
          acc += xv[n * in + k] * static_cast<float>(codes[o * in + k]);
        yv[n * out + o] = acc * scales[o] + (bv ? bv[o] : 0.0f);
      }
    return dmem::plugin::Outcome::ok();
  }

 private:
  struct Shape {
    std::uint64_t rows = 1;
    std::uint64_t cols = 1;
  };
  static Shape rows_cols(const dmem_plugin_tensor& t) {
    Shape s;
    if (t.rank == 0) return s;
    s.cols = t.shape[t.rank - 1];
    for (std::uint32_t i = 0; i + 1 < t.rank; ++i) s.rows *= t.shape[i];
    return s;
  }
  static std::uint64_t elements(const dmem_plugin_tensor& t) {
    std::uint64_t n = 0;
    return dmem::plugin::element_count(t, n) ? n : UINT64_MAX;
  }
  static std::uint64_t element_bytes(const dmem_plugin_tensor& t) {
    const std::uint64_t n = elements(t);
    return n > UINT64_MAX / 4 ? UINT64_MAX : 4 * n;
  }
  // The codes follow the scales, so the scales stay 4-byte aligned.
  static std::int8_t* codes_of(float* scales, Shape s) {
    return static_cast<std::int8_t*>(static_cast<void*>(scales + s.rows));
  }
  // Only f32 is accepted, and the packed bytes must stay addressable in 64 bits.
  static dmem::plugin::Outcome accept(const dmem_plugin_tensor& t) {
    if (t.dtype != DMEM_PLUGIN_DTYPE_F32)
      return {DMEM_PLUGIN_UNSUPPORTED, "only f32 tensors are accepted"};
    std::uint64_t n = 0;
    if (!dmem::plugin::element_count(t, n) || n > UINT64_MAX / 8)
      return {DMEM_PLUGIN_LIMIT_EXCEEDED, "tensor too large"};
    return dmem::plugin::Outcome::ok();
  }
  static dmem::plugin::Outcome check_cpu(const dmem_plugin_tensor& t, const char* what) {
    if (t.device != DMEM_PLUGIN_DEVICE_CPU)
      return {DMEM_PLUGIN_UNSUPPORTED, std::string(what) + " is not in CPU memory"};
    if (t.dtype != DMEM_PLUGIN_DTYPE_F32 || !t.data)
      return {DMEM_PLUGIN_INVALID_ARGUMENT, std::string(what) + " must be f32 with data"};
    return dmem::plugin::Outcome::ok();
  }
  dmem::plugin::Outcome check_packed(const dmem_plugin_tensor& packed) const {
    std::uint64_t need = 0;
    if (auto o = stored_bytes(packed, need); !o.is_ok()) return o;
    if (packed.device != DMEM_PLUGIN_DEVICE_CPU || (need && !packed.data) || packed.nbytes < need)
      return {DMEM_PLUGIN_INVALID_ARGUMENT, "packed tensor missing, not on the CPU or too small"};
    return dmem::plugin::Outcome::ok();
  }
};

}  // namespace dmem_test
