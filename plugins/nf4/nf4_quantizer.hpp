// The dmem.quantizer.nf4 plugin class: bitsandbytes NF4 / FP4 with optional double quantization
// (README.md beside this file). Quantizes 2-D weights on the CPU; dequantizes on the CPU and, in
// CUDA builds, on the GPU; runs linear on the CPU. Never throws.
#pragma once

#include <charconv>
#include <string>
#include <vector>

#include "dmem/plugin/plugin.hpp"
#include "nf4_cuda.hpp"
#include "nf4_layout.hpp"

namespace dmem_nf4 {

using dmem::plugin::Outcome;

class Nf4Quantizer {
 public:
  static constexpr const char* kId = "dmem.quantizer.nf4";
  static constexpr const char* kDisplay = "bitsandbytes nf4 / fp4";
  static constexpr const char* kVersion = "1.0.0";

  Outcome configure(const dmem::plugin::Params& params) {
    for (std::size_t i = 0; i < params.size(); ++i) {
      const std::string_view k = params.key(i);
      if (k != "quant_type" && k != "blocksize" && k != "double_quant" &&
          k != "compress_statistics")
        return {DMEM_PLUGIN_INVALID_ARGUMENT,
                "nf4: unknown parameter '" + std::string(k) +
                    "' (this quantizer takes quant_type, blocksize, double_quant)"};
    }
    const std::string_view qt = params.get("quant_type", "nf4");
    if (qt != "nf4" && qt != "fp4")
      return {DMEM_PLUGIN_INVALID_ARGUMENT,
              "nf4: quant_type '" + std::string(qt) + "' is not nf4 or fp4"};
    type_ = qt == "nf4" ? QuantType::nf4 : QuantType::fp4;
    const std::string_view bs = params.get("blocksize", "64");
    std::uint64_t v = 0;
    auto [p, ec] = std::from_chars(bs.data(), bs.data() + bs.size(), v);
    if (ec != std::errc() || p != bs.data() + bs.size() || v < 32 || v > 4096 || (v & (v - 1)))
      return {DMEM_PLUGIN_INVALID_ARGUMENT,
              "nf4: blocksize '" + std::string(bs) +
                  "' is not one bitsandbytes accepts (32, 64, 128, ..., 4096)"};
    blocksize_ = v;
    bool dq = false;
    for (const char* key : {"double_quant", "compress_statistics"}) {
      if (!params.has(key)) continue;
      const std::string_view b = params.get(key);
      if (b != "true" && b != "false")
        return {
            DMEM_PLUGIN_INVALID_ARGUMENT,
            std::string("nf4: ") + key + " must be true or false, not '" + std::string(b) + "'"};
      if (params.has("double_quant") && params.has("compress_statistics") &&
          params.get("double_quant") != params.get("compress_statistics"))
        return {DMEM_PLUGIN_INVALID_ARGUMENT,
                "nf4: double_quant and compress_statistics disagree (they are the same setting)"};
      dq = b == "true";
    }
    nested_ = dq;
    return Outcome::ok();
  }

  Outcome caps(dmem::plugin::Caps& c) const {
    c.exec_devices = DMEM_PLUGIN_DEVICE_CPU;
#if defined(DMEM_NF4_CUDA)
    c.exec_devices |= DMEM_PLUGIN_DEVICE_CUDA;
    c.cuda_archs = cuda_archs();
#endif
    c.flags = DMEM_PLUGIN_QFLAG_MOVES_PACKED;
    c.input_dtypes = DMEM_PLUGIN_DTYPE_BIT(DMEM_PLUGIN_DTYPE_F32) |
                     DMEM_PLUGIN_DTYPE_BIT(DMEM_PLUGIN_DTYPE_F16) |
                     DMEM_PLUGIN_DTYPE_BIT(DMEM_PLUGIN_DTYPE_BF16);
    c.block_size = static_cast<std::uint32_t>(blocksize_);
    // FP4 keeps less of a normal weight distribution than NF4 (QLoRA): one tier lower.
    c.quality_tier = type_ == QuantType::nf4 ? DMEM_PLUGIN_QUALITY_Q4 : DMEM_PLUGIN_QUALITY_Q4_LOW;
    c.speed_factor = nested_ ? 1.02 : 1.00;  // as the planner's built-in table
    const std::string t = type_ == QuantType::nf4 ? "nf4" : "fp4";
    c.variant = nested_ ? t + "-dq" : t;
    c.display = nested_ ? t + " (double quant)" : t;
    return Outcome::ok();
  }

  Outcome stored_bytes(const dmem_plugin_tensor& t, std::uint64_t& bytes) const {
    if (auto o = accept(t, "tensor"); !o.is_ok()) return o;
    bytes = layout(t).bytes;
    return Outcome::ok();
  }

  Outcome quantize(const dmem_plugin_tensor& src, dmem_plugin_tensor& packed,
                   void* /*stream*/) const {
    if (auto o = accept(src, "quantize source"); !o.is_ok()) return o;
    if (src.device != DMEM_PLUGIN_DEVICE_CPU || packed.device != DMEM_PLUGIN_DEVICE_CPU)
      return {DMEM_PLUGIN_UNSUPPORTED,
              "nf4: quantize runs on the CPU; pass CPU tensors and move the packed bytes after"};
    const Layout l = layout(src);
    if (auto o = check_buffer(src, l.n * dmem::plugin::dtype_size(src.dtype), "quantize source");
        !o.is_ok())
      return o;
    if (auto o = check_buffer(packed, l.bytes, "packed destination"); !o.is_ok()) return o;
    auto* out = static_cast<std::uint8_t*>(packed.data);
    const void* in = src.data;
    switch (src.dtype) {
      case DMEM_PLUGIN_DTYPE_F32:
        pack(
            l, [in](std::uint64_t i) { return static_cast<const float*>(in)[i]; }, out);
        break;
      case DMEM_PLUGIN_DTYPE_BF16:
        pack(
            l, [in](std::uint64_t i) { return half(in, i, true); }, out);
        break;
      default:
        pack(
            l, [in](std::uint64_t i) { return half(in, i, false); }, out);
        break;
    }
    return Outcome::ok();
  }

  Outcome dequantize(const dmem_plugin_tensor& packed, dmem_plugin_tensor& dst,
                     void* stream) const {
    if (auto o = accept(packed, "packed tensor"); !o.is_ok()) return o;
    if (dst.rank != packed.rank || !std::equal(dst.shape, dst.shape + dst.rank, packed.shape))
      return {DMEM_PLUGIN_INVALID_ARGUMENT,
              "nf4: dequantize destination has another shape than the packed weight"};
    if (auto o = out_type(dst.dtype, "dequantize destination"); !o.is_ok()) return o;
    const Layout l = layout(packed);
    if (auto o = check_buffer(packed, l.bytes, "packed tensor"); !o.is_ok()) return o;
    if (auto o = check_buffer(dst, l.n * dmem::plugin::dtype_size(dst.dtype), "destination");
        !o.is_ok())
      return o;
    if (packed.device != dst.device)
      return {DMEM_PLUGIN_INVALID_ARGUMENT,
              "nf4: packed weight and destination must be on the same device"};
    if (packed.device == DMEM_PLUGIN_DEVICE_CUDA) {
#if defined(DMEM_NF4_CUDA)
      CudaLayout c;
      c.n = l.n;
      c.blocksize = l.blocksize;
      c.absmax_at = l.absmax_at;
      c.offset_at = l.offset_at;
      c.nested_at = l.nested_at;
      c.qabsmax_at = l.qabsmax_at;
      c.codes_at = l.codes_at;
      c.fp4 = type_ == QuantType::fp4;
      c.nested = nested_;
      c.out = dst.dtype;
      if (const char* e = cuda_dequantize(c, packed.data, dst.data, stream))
        return {DMEM_PLUGIN_INTERNAL, std::string("nf4: CUDA dequantize failed: ") + e};
      return Outcome::ok();
#else
      (void)stream;
      return {DMEM_PLUGIN_UNSUPPORTED,
              "nf4: this build of the plugin has no CUDA kernels; rebuild dmem with CUDA"};
#endif
    }
    unpack(l, static_cast<const std::uint8_t*>(packed.data), static_cast<OutType>(dst.dtype),
           dst.data);
    return Outcome::ok();
  }

  // y[r, o] = sum_k x[r, k] * W[o, k] + bias[o]: W dequantized to f32 a tile of rows at a time,
  // accumulated in f32, rounded once to y's dtype.
  Outcome linear(const dmem_plugin_tensor& x, const dmem_plugin_tensor& weight,
                 const dmem_plugin_tensor* bias, dmem_plugin_tensor& y, void* /*stream*/) const {
    if (auto o = accept(weight, "linear weight"); !o.is_ok()) return o;
    for (const dmem_plugin_tensor* t :
         {&x, &weight, static_cast<const dmem_plugin_tensor*>(&y), bias})
      if (t && t->device != DMEM_PLUGIN_DEVICE_CPU)
        return {DMEM_PLUGIN_UNSUPPORTED,
                "nf4: linear runs on the CPU; on CUDA dequantize the weight and run the GEMM"};
    if (auto o = out_type(x.dtype, "linear input"); !o.is_ok()) return o;
    if (y.dtype != x.dtype || (bias && bias->dtype != x.dtype))
      return {DMEM_PLUGIN_INVALID_ARGUMENT, "nf4: linear output and bias must have x's dtype"};
    const std::uint64_t out = weight.shape[0], in = weight.shape[1];
    if (x.rank == 0 || x.rank > DMEM_PLUGIN_MAX_RANK || y.rank != x.rank ||
        x.shape[x.rank - 1] != in || y.shape[y.rank - 1] != out ||
        !std::equal(x.shape, x.shape + x.rank - 1, y.shape) ||
        (bias && (bias->rank != 1 || bias->shape[0] != out)))
      return {DMEM_PLUGIN_INVALID_ARGUMENT, "nf4: linear needs x [..., " + std::to_string(in) +
                                                "], y [..., " + std::to_string(out) +
                                                "] and bias [" + std::to_string(out) + "]"};
    const Layout l = layout(weight);
    std::uint64_t rows = 1;
    for (std::uint32_t i = 0; i + 1 < x.rank; ++i) rows *= x.shape[i];
    const std::size_t es = dmem::plugin::dtype_size(x.dtype);
    if (auto o = check_buffer(weight, l.bytes, "linear weight"); !o.is_ok()) return o;
    if (auto o = check_buffer(x, rows * in * es, "linear input"); !o.is_ok()) return o;
    if (auto o = check_buffer(y, rows * out * es, "linear output"); !o.is_ok()) return o;
    if (bias)
      if (auto o = check_buffer(*bias, out * es, "linear bias"); !o.is_ok()) return o;
    std::vector<float> w(static_cast<std::size_t>(l.n));
    unpack(l, static_cast<const std::uint8_t*>(weight.data), OutType::f32, w.data());
    std::vector<float> xr(static_cast<std::size_t>(in));
    for (std::uint64_t r = 0; r < rows; ++r) {
      for (std::uint64_t k = 0; k < in; ++k) xr[k] = load(x, r * in + k);
      for (std::uint64_t o = 0; o < out; ++o) {
        const float* wr = w.data() + o * in;
        float acc = 0.0f;
        for (std::uint64_t k = 0; k < in; ++k) acc += xr[k] * wr[k];
        if (bias) acc += load(*bias, o);
        store(y, r * out + o, acc);
      }
    }
    return Outcome::ok();
  }

 private:
  QuantType type_ = QuantType::nf4;
  std::uint64_t blocksize_ = 64;
  bool nested_ = false;

  Layout layout(const dmem_plugin_tensor& t) const {
    return make_layout(type_, t.shape[0] * t.shape[1], blocksize_, nested_);
  }

  static float half(const void* p, std::uint64_t i, bool bf16) {
    const std::uint16_t h = static_cast<const std::uint16_t*>(p)[i];
    return std::bit_cast<float>(bf16 ? dmem::detail::bf16_to_f32_bits(h)
                                     : dmem::detail::f16_to_f32_bits(h));
  }
  static float load(const dmem_plugin_tensor& t, std::uint64_t i) {
    if (t.dtype == DMEM_PLUGIN_DTYPE_F32) return static_cast<const float*>(t.data)[i];
    return half(t.data, i, t.dtype == DMEM_PLUGIN_DTYPE_BF16);
  }
  static void store(dmem_plugin_tensor& t, std::uint64_t i, float v) {
    if (t.dtype == DMEM_PLUGIN_DTYPE_F32)
      static_cast<float*>(t.data)[i] = v;
    else
      static_cast<std::uint16_t*>(t.data)[i] = to_half_bits(static_cast<OutType>(t.dtype), v);
  }

  static Outcome out_type(std::uint32_t dtype, const char* what) {
    if (dtype == DMEM_PLUGIN_DTYPE_F32 || dtype == DMEM_PLUGIN_DTYPE_F16 ||
        dtype == DMEM_PLUGIN_DTYPE_BF16)
      return Outcome::ok();
    return {DMEM_PLUGIN_UNSUPPORTED, std::string("nf4: ") + what + " must be f32, f16 or bf16"};
  }

  // A quantizable weight: 2-D, f32 / f16 / bf16, at most 2^62 elements.
  static Outcome accept(const dmem_plugin_tensor& t, const char* what) {
    if (auto o = out_type(t.dtype, what); !o.is_ok()) return o;
    if (t.rank != 2)
      return {DMEM_PLUGIN_INVALID_ARGUMENT,
              std::string("nf4: ") + what + " has rank " + std::to_string(t.rank) +
                  "; only 2-D linear weights [out, in] are quantized (keep the others native)"};
    std::uint64_t n = 0;
    if (!dmem::plugin::element_count(t, n) || n > (std::uint64_t{1} << 62))
      return {DMEM_PLUGIN_LIMIT_EXCEEDED, std::string("nf4: ") + what + " is too large"};
    return Outcome::ok();
  }

  static Outcome check_buffer(const dmem_plugin_tensor& t, std::uint64_t need, const char* what) {
    if (need != 0 && !t.data)
      return {DMEM_PLUGIN_INVALID_ARGUMENT, std::string("nf4: ") + what + " has no data"};
    if (t.nbytes < need)
      return {DMEM_PLUGIN_INVALID_ARGUMENT, std::string("nf4: ") + what + " holds " +
                                                std::to_string(t.nbytes) + " bytes, needs " +
                                                std::to_string(need)};
    return Outcome::ok();
  }
};

}  // namespace dmem_nf4
