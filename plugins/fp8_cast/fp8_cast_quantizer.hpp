// The dmem.quantizer.fp8_cast plugin class: weights stored as fp8 (e4m3fn or e5m2) with an
// optional f32 scale per tensor or per output channel, upcast to f32 / bf16 / f16 to compute
// (README.md beside this file). Stored bytes: scales f32[0 | 1 | out] | codes u8[n].
#pragma once

#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "dmem/plugin/plugin.hpp"
#include "fp8_codec.hpp"

namespace dmem_fp8 {

using dmem::plugin::Outcome;

enum class Scale : std::uint8_t { none, tensor, channel };

class Fp8CastQuantizer {
 public:
  static constexpr const char* kId = "dmem.quantizer.fp8_cast";
  static constexpr const char* kDisplay = "fp8 storage (e4m3 / e5m2)";
  static constexpr const char* kVersion = "1.0.0";

  Outcome configure(const dmem::plugin::Params& params) {
    for (std::size_t i = 0; i < params.size(); ++i) {
      const std::string_view k = params.key(i);
      if (k != "format" && k != "mode" && k != "scale")
        return {DMEM_PLUGIN_INVALID_ARGUMENT, "fp8_cast: unknown parameter '" + std::string(k) +
                                                  "' (this quantizer takes format, mode, scale)"};
    }
    const std::string_view f = params.get("format", "e4m3");
    if (f != "e4m3" && f != "e5m2")
      return {DMEM_PLUGIN_INVALID_ARGUMENT,
              "fp8_cast: format '" + std::string(f) + "' is not e4m3 or e5m2"};
    format_ = f == "e4m3" ? Format::e4m3 : Format::e5m2;
    const std::string_view m = params.get("mode", "weight_only");
    if (m != "weight_only" && m != "gemm")
      return {DMEM_PLUGIN_INVALID_ARGUMENT,
              "fp8_cast: mode '" + std::string(m) + "' is not weight_only or gemm"};
    gemm_ = m == "gemm";
    if (gemm_)
      return {DMEM_PLUGIN_UNSUPPORTED,
              "fp8_cast: mode=gemm (cuBLASLt fp8 GEMM, SM >= 8.9) is not implemented in this "
              "version; use mode=weight_only"};
    const std::string_view s = params.get("scale", "none");
    if (s == "none")
      scale_ = Scale::none;
    else if (s == "tensor")
      scale_ = Scale::tensor;
    else if (s == "channel")
      scale_ = Scale::channel;
    else
      return {DMEM_PLUGIN_INVALID_ARGUMENT,
              "fp8_cast: scale '" + std::string(s) + "' is not none, tensor or channel"};
    return Outcome::ok();
  }

  Outcome caps(dmem::plugin::Caps& c) const {
    c.exec_devices = DMEM_PLUGIN_DEVICE_CPU;
    c.flags = DMEM_PLUGIN_QFLAG_MOVES_PACKED | DMEM_PLUGIN_QFLAG_IS_CAST;
    c.input_dtypes = DMEM_PLUGIN_DTYPE_BIT(DMEM_PLUGIN_DTYPE_F32) |
                     DMEM_PLUGIN_DTYPE_BIT(DMEM_PLUGIN_DTYPE_F16) |
                     DMEM_PLUGIN_DTYPE_BIT(DMEM_PLUGIN_DTYPE_BF16);
    c.quality_tier = DMEM_PLUGIN_QUALITY_FP8;
    c.speed_factor = 1.18;  // as the planner's built-in table
    c.variant = format_ == Format::e4m3 ? "e4m3" : "e5m2";
    c.display = "fp8 " + c.variant + " (cast)";
    return Outcome::ok();
  }

  Outcome stored_bytes(const dmem_plugin_tensor& t, std::uint64_t& bytes) const {
    if (auto o = accept(t, "tensor"); !o.is_ok()) return o;
    bytes = scales(t) * 4 + elements(t);
    return Outcome::ok();
  }

  Outcome quantize(const dmem_plugin_tensor& src, dmem_plugin_tensor& packed, void*) const {
    if (auto o = accept(src, "quantize source"); !o.is_ok()) return o;
    if (auto o = on_cpu(src, packed); !o.is_ok()) return o;
    const std::uint64_t n = elements(src), ns = scales(src), per = ns ? n / ns : n;
    if (auto o = check_buffer(src, n * dmem::plugin::dtype_size(src.dtype), "source"); !o.is_ok())
      return o;
    if (auto o = check_buffer(packed, ns * 4 + n, "packed destination"); !o.is_ok()) return o;
    auto* base = static_cast<std::uint8_t*>(packed.data);
    std::uint8_t* codes = base + ns * 4;
    for (std::uint64_t s = 0; s < std::max<std::uint64_t>(ns, 1); ++s) {
      const std::uint64_t b = ns ? s * per : 0, e = ns ? b + per : n;
      float scale = 1.0f;
      if (ns) {  // amax / largest finite; an all-zero group keeps scale 1
        float amax = 0.0f;
        for (std::uint64_t i = b; i < e; ++i) amax = std::max(amax, std::fabs(load(src, i)));
        if (amax > 0.0f && std::isfinite(amax)) scale = amax / largest(format_);
        std::memcpy(base + s * 4, &scale, 4);
      }
      for (std::uint64_t i = b; i < e; ++i) codes[i] = encode(format_, load(src, i) / scale);
    }
    return Outcome::ok();
  }

  Outcome dequantize(const dmem_plugin_tensor& packed, dmem_plugin_tensor& dst, void*) const {
    if (auto o = accept(packed, "packed tensor"); !o.is_ok()) return o;
    if (auto o = on_cpu(packed, dst); !o.is_ok()) return o;
    if (dst.rank != packed.rank || !std::equal(dst.shape, dst.shape + dst.rank, packed.shape))
      return {DMEM_PLUGIN_INVALID_ARGUMENT,
              "fp8_cast: dequantize destination has another shape than the packed weight"};
    if (auto o = float_type(dst.dtype, "destination"); !o.is_ok()) return o;
    const std::uint64_t n = elements(packed), ns = scales(packed), per = ns ? n / ns : n;
    if (auto o = check_buffer(packed, ns * 4 + n, "packed tensor"); !o.is_ok()) return o;
    if (auto o = check_buffer(dst, n * dmem::plugin::dtype_size(dst.dtype), "destination");
        !o.is_ok())
      return o;
    const auto* base = static_cast<const std::uint8_t*>(packed.data);
    const std::uint8_t* codes = base + ns * 4;
    for (std::uint64_t i = 0; i < n; ++i) {
      float scale = 1.0f;
      if (ns) std::memcpy(&scale, base + (i / per) * 4, 4);
      const float v = decode(format_, codes[i]);
      store(dst, i, ns ? v * scale : v);
    }
    return Outcome::ok();
  }

  // Weight-only: the weight is upcast to f32, y accumulated in f32 and rounded once.
  Outcome linear(const dmem_plugin_tensor& x, const dmem_plugin_tensor& w,
                 const dmem_plugin_tensor* bias, dmem_plugin_tensor& y, void*) const {
    if (auto o = accept(w, "linear weight"); !o.is_ok()) return o;
    if (w.rank != 2)
      return {DMEM_PLUGIN_INVALID_ARGUMENT, "fp8_cast: linear weight must be [out, in]"};
    for (const dmem_plugin_tensor* t : {&x, static_cast<const dmem_plugin_tensor*>(&y), bias})
      if (t && t->device != DMEM_PLUGIN_DEVICE_CPU)
        return {DMEM_PLUGIN_UNSUPPORTED, "fp8_cast: linear runs on the CPU in this version"};
    if (auto o = float_type(x.dtype, "linear input"); !o.is_ok()) return o;
    if (y.dtype != x.dtype || (bias && bias->dtype != x.dtype))
      return {DMEM_PLUGIN_INVALID_ARGUMENT, "fp8_cast: linear output and bias must have x's dtype"};
    const std::uint64_t out = w.shape[0], in = w.shape[1];
    if (x.rank == 0 || y.rank != x.rank || x.shape[x.rank - 1] != in ||
        y.shape[y.rank - 1] != out || !std::equal(x.shape, x.shape + x.rank - 1, y.shape) ||
        (bias && (bias->rank != 1 || bias->shape[0] != out)))
      return {DMEM_PLUGIN_INVALID_ARGUMENT, "fp8_cast: linear needs x [..., " + std::to_string(in) +
                                                "], y [..., " + std::to_string(out) +
                                                "] and bias [" + std::to_string(out) + "]"};
    std::uint64_t rows = 1;
    for (std::uint32_t i = 0; i + 1 < x.rank; ++i) rows *= x.shape[i];
    const std::size_t es = dmem::plugin::dtype_size(x.dtype);
    if (auto o = check_buffer(x, rows * in * es, "linear input"); !o.is_ok()) return o;
    if (auto o = check_buffer(y, rows * out * es, "linear output"); !o.is_ok()) return o;
    if (bias)
      if (auto o = check_buffer(*bias, out * es, "linear bias"); !o.is_ok()) return o;
    std::vector<float> wf(out * in);
    auto dst = w;
    dst.dtype = DMEM_PLUGIN_DTYPE_F32;
    dst.data = wf.data();
    dst.nbytes = wf.size() * 4;
    if (auto o = dequantize(w, dst, nullptr); !o.is_ok()) return o;
    for (std::uint64_t r = 0; r < rows; ++r)
      for (std::uint64_t o = 0; o < out; ++o) {
        float acc = 0.0f;
        for (std::uint64_t k = 0; k < in; ++k) acc += load(x, r * in + k) * wf[o * in + k];
        if (bias) acc += load(*bias, o);
        store(y, r * out + o, acc);
      }
    return Outcome::ok();
  }

 private:
  Format format_ = Format::e4m3;
  bool gemm_ = false;
  Scale scale_ = Scale::none;

  static std::uint64_t elements(const dmem_plugin_tensor& t) {
    std::uint64_t n = 0;
    return dmem::plugin::element_count(t, n) ? n : 0;
  }
  std::uint64_t scales(const dmem_plugin_tensor& t) const {
    if (scale_ == Scale::none) return 0;
    if (scale_ == Scale::tensor) return 1;
    return t.shape[0];
  }
  static float load(const dmem_plugin_tensor& t, std::uint64_t i) {
    if (t.dtype == DMEM_PLUGIN_DTYPE_F32) return static_cast<const float*>(t.data)[i];
    const std::uint16_t h = static_cast<const std::uint16_t*>(t.data)[i];
    return std::bit_cast<float>(t.dtype == DMEM_PLUGIN_DTYPE_BF16
                                    ? dmem::detail::bf16_to_f32_bits(h)
                                    : dmem::detail::f16_to_f32_bits(h));
  }
  static void store(dmem_plugin_tensor& t, std::uint64_t i, float v) {
    const auto u = std::bit_cast<std::uint32_t>(v);
    if (t.dtype == DMEM_PLUGIN_DTYPE_F32)
      static_cast<float*>(t.data)[i] = v;
    else
      static_cast<std::uint16_t*>(t.data)[i] = t.dtype == DMEM_PLUGIN_DTYPE_BF16
                                                   ? dmem::detail::f32_to_bf16_bits(u)
                                                   : dmem::detail::f32_to_f16_bits(u);
  }
  static Outcome float_type(std::uint32_t dtype, const char* what) {
    if (dtype == DMEM_PLUGIN_DTYPE_F32 || dtype == DMEM_PLUGIN_DTYPE_F16 ||
        dtype == DMEM_PLUGIN_DTYPE_BF16)
      return Outcome::ok();
    return {DMEM_PLUGIN_UNSUPPORTED,
            std::string("fp8_cast: ") + what + " must be f32, f16 or bf16"};
  }
  Outcome accept(const dmem_plugin_tensor& t, const char* what) const {
    if (auto o = float_type(t.dtype, what); !o.is_ok()) return o;
    if (t.rank == 0 || (scale_ == Scale::channel && t.rank != 2))
      return {DMEM_PLUGIN_INVALID_ARGUMENT,
              std::string("fp8_cast: ") + what + " has rank " + std::to_string(t.rank) +
                  (scale_ == Scale::channel ? "; scale=channel needs a 2-D weight [out, in]"
                                            : "; give a tensor of rank 1 or more")};
    std::uint64_t n = 0;
    if (!dmem::plugin::element_count(t, n) || n > (std::uint64_t{1} << 62))
      return {DMEM_PLUGIN_LIMIT_EXCEEDED, std::string("fp8_cast: ") + what + " is too large"};
    return Outcome::ok();
  }
  static Outcome on_cpu(const dmem_plugin_tensor& a, const dmem_plugin_tensor& b) {
    if (a.device != DMEM_PLUGIN_DEVICE_CPU || b.device != DMEM_PLUGIN_DEVICE_CPU)
      return {DMEM_PLUGIN_UNSUPPORTED, "fp8_cast: this version converts CPU tensors only"};
    return Outcome::ok();
  }
  static Outcome check_buffer(const dmem_plugin_tensor& t, std::uint64_t need, const char* what) {
    if (need != 0 && !t.data)
      return {DMEM_PLUGIN_INVALID_ARGUMENT, std::string("fp8_cast: ") + what + " has no data"};
    if (t.nbytes < need)
      return {DMEM_PLUGIN_INVALID_ARGUMENT, std::string("fp8_cast: ") + what + " holds " +
                                                std::to_string(t.nbytes) + " bytes, needs " +
                                                std::to_string(need)};
    return Outcome::ok();
  }
};

}  // namespace dmem_fp8
