#include "bnb_int8_quantizer.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "dmem/dtype.hpp"
#include "int8_cuda.hpp"
#include "row_quant.hpp"
#include "tensor_view.hpp"

namespace dmem_bnb {

namespace {

using dmem::plugin::Outcome;
using dmem_plugins::describe;

constexpr std::uint64_t kAcceptedDtypes = DMEM_PLUGIN_DTYPE_BIT(DMEM_PLUGIN_DTYPE_F32) |
                                          DMEM_PLUGIN_DTYPE_BIT(DMEM_PLUGIN_DTYPE_F16) |
                                          DMEM_PLUGIN_DTYPE_BIT(DMEM_PLUGIN_DTYPE_BF16);

Outcome fail(std::int32_t code, std::string message) {
  return {code, std::move(message)};
}

// Rows are the first dimension (a Linear's out), cols the rest, as the planner counts them.
struct Layout {
  std::uint64_t rows = 0;
  std::uint64_t cols = 0;
};
Layout layout_of(const dmem_plugin_tensor& t) {
  Layout l{t.shape[0], 1};
  for (std::uint32_t i = 1; i < t.rank; ++i) l.cols *= t.shape[i];
  return l;
}

float value_as_f32(std::uint32_t dtype, const std::uint8_t* p) {
  std::uint16_t h;
  switch (dtype) {
    case DMEM_PLUGIN_DTYPE_F32: {
      float f;
      std::memcpy(&f, p, 4);
      return f;
    }
    case DMEM_PLUGIN_DTYPE_F16:
      std::memcpy(&h, p, 2);
      return dmem::f16_to_f32(h);
    default:
      std::memcpy(&h, p, 2);
      return dmem::bf16_to_f32(h);
  }
}

cuda::Float cuda_float(std::uint32_t dtype) {
  return dtype == DMEM_PLUGIN_DTYPE_F32   ? cuda::Float::f32
         : dtype == DMEM_PLUGIN_DTYPE_F16 ? cuda::Float::f16
                                          : cuda::Float::bf16;
}

}  // namespace

Outcome BnbInt8Quantizer::configure(const dmem::plugin::Params& params) {
  for (std::size_t i = 0; i < params.size(); ++i)
    if (params.key(i) != "threshold")
      return fail(DMEM_PLUGIN_INVALID_ARGUMENT,
                  std::string("unknown parameter '")
                      .append(params.key(i))
                      .append("': bnb_int8 takes threshold=<outlier threshold, default 6.0>"));
  const std::string_view s = params.get("threshold", "6.0");
  float v = 0.0f;
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || end != s.data() + s.size() || !std::isfinite(v) || v < 0.0f)
    return fail(DMEM_PLUGIN_INVALID_ARGUMENT,
                std::string("threshold '")
                    .append(s)
                    .append("' is not a finite number >= 0 (6.0 is LLM.int8's default; 0 turns the "
                            "outlier path off)"));
  threshold_ = v;
  return Outcome::ok();
}

Outcome BnbInt8Quantizer::caps(dmem::plugin::Caps& c) const {
  // The int8 GEMM runs on CUDA only, and its weights rest on the device (as the planner's table:
  // bitsandbytes int8 cannot be offloaded), so the validator refuses CPU placements.
  c.exec_devices = DMEM_PLUGIN_DEVICE_CUDA;
  c.storage_tiers = DMEM_PLUGIN_TIER_VRAM;
  c.flags = DMEM_PLUGIN_QFLAG_MOVES_PACKED | DMEM_PLUGIN_QFLAG_NEEDS_CUBLASLT;
  c.input_dtypes = kAcceptedDtypes;
  c.quality_tier = DMEM_PLUGIN_QUALITY_INT8;
  c.speed_factor = 3.70;  // as the planner's built-in table
  c.cuda_archs = cuda::archs();
  c.variant = "int8";
  c.display = "int8";
  return Outcome::ok();
}

Outcome BnbInt8Quantizer::stored_bytes(const dmem_plugin_tensor& t, std::uint64_t& bytes) const {
  if (t.dtype >= 64 || !(DMEM_PLUGIN_DTYPE_BIT(t.dtype) & kAcceptedDtypes))
    return fail(DMEM_PLUGIN_UNSUPPORTED,
                "tensor " + describe(t) + ": bnb_int8 quantizes f32, f16 or bf16 weights only");
  if (t.rank < 2)
    return fail(DMEM_PLUGIN_INVALID_ARGUMENT,
                "tensor " + describe(t) +
                    ": bnb_int8 quantizes linear weights [out, in]; keep this tensor native");
  std::uint64_t n = 0;
  if (!dmem::plugin::element_count(t, n) || n > UINT64_MAX / 2)
    return fail(DMEM_PLUGIN_LIMIT_EXCEEDED, "tensor " + describe(t) + ": too large");
  bytes = 4 * t.shape[0] + n + 1;
  return Outcome::ok();
}

Outcome BnbInt8Quantizer::check_packed(const dmem_plugin_tensor& packed) const {
  std::uint64_t need = 0;
  if (auto o = stored_bytes(packed, need); !o.is_ok()) return o;
  if (packed.nbytes < need || !packed.data)
    return fail(DMEM_PLUGIN_INVALID_ARGUMENT,
                "packed tensor " + describe(packed) + ": " + std::to_string(packed.nbytes) +
                    " bytes given, bnb_int8 needs " + std::to_string(need) +
                    " (SCB f32[rows], CB int8[rows, cols], weight_format u8)");
  return Outcome::ok();
}

Outcome BnbInt8Quantizer::quantize(const dmem_plugin_tensor& src, dmem_plugin_tensor& packed,
                                   void* /*stream*/) const {
  std::uint64_t need = 0;
  if (auto o = stored_bytes(src, need); !o.is_ok()) return o;
  if (src.device != DMEM_PLUGIN_DEVICE_CPU || packed.device != DMEM_PLUGIN_DEVICE_CPU)
    return fail(DMEM_PLUGIN_UNSUPPORTED,
                "tensor " + describe(src) + ": bnb_int8 quantizes on the CPU; pass CPU buffers");
  const Layout l = layout_of(src);
  const std::size_t esize = dmem::plugin::dtype_size(src.dtype);
  if (!src.data || src.nbytes < l.rows * l.cols * esize || !packed.data || packed.nbytes < need)
    return fail(DMEM_PLUGIN_INVALID_ARGUMENT,
                "tensor " + describe(src) + ": source or packed buffer smaller than the tensor");
  auto* scb = static_cast<float*>(packed.data);
  auto* cb = reinterpret_cast<std::int8_t*>(static_cast<std::uint8_t*>(packed.data) + 4 * l.rows);
  const auto* in = static_cast<const std::uint8_t*>(src.data);
  std::vector<float> row(l.cols);
  for (std::uint64_t r = 0; r < l.rows; ++r) {
    for (std::uint64_t c = 0; c < l.cols; ++c) {
      // bitsandbytes quantizes the weight cast to f16 (Int8Params._quantize).
      const float v = value_as_f32(src.dtype, in + (r * l.cols + c) * esize);
      const float h = dmem::f16_to_f32(dmem::f32_to_f16(v));
      if (!std::isfinite(h))
        return fail(DMEM_PLUGIN_INVALID_ARGUMENT,
                    "tensor " + describe(src) + ": element [" + std::to_string(r) + ", " +
                        std::to_string(c) +
                        "] is not finite in f16, which bitsandbytes quantizes from; rescale the "
                        "weight or keep it native");
      row[c] = h;
    }
    scb[r] = quantize_row(row.data(), l.cols, cb + r * l.cols);
  }
  static_cast<std::uint8_t*>(packed.data)[need - 1] = 0;  // weight_format: row
  return Outcome::ok();
}

Outcome BnbInt8Quantizer::dequantize(const dmem_plugin_tensor& packed, dmem_plugin_tensor& dst,
                                     void* stream) const {
  if (auto o = check_packed(packed); !o.is_ok()) return o;
  dmem::DType to{};
  if (!dmem_plugins::float_dtype(dst.dtype, to))
    return fail(DMEM_PLUGIN_UNSUPPORTED,
                "destination " + describe(dst) + ": bnb_int8 dequantizes to f32, f16 or bf16");
  const Layout l = layout_of(packed);
  if (dst.rank != packed.rank || !std::equal(dst.shape, dst.shape + dst.rank, packed.shape) ||
      !dst.data || dst.nbytes < l.rows * l.cols * dmem::plugin::dtype_size(dst.dtype) ||
      dst.device != packed.device)
    return fail(DMEM_PLUGIN_INVALID_ARGUMENT, "destination " + describe(dst) +
                                                  " does not match packed tensor " +
                                                  describe(packed) + ", is too small or elsewhere");
  const auto* base = static_cast<const std::uint8_t*>(packed.data);
  const auto* scb = reinterpret_cast<const float*>(base);
  const auto* cb = reinterpret_cast<const std::int8_t*>(base + 4 * l.rows);
  if (packed.device == DMEM_PLUGIN_DEVICE_CUDA) {
    const std::string e =
        cuda::dequantize({scb, cb, l.rows, l.cols}, dst.data, cuda_float(dst.dtype), stream);
    return e.empty() ? Outcome::ok() : fail(DMEM_PLUGIN_INTERNAL, "bnb_int8 CUDA dequantize: " + e);
  }
  if (base[4 * l.rows + l.rows * l.cols] != 0)
    return fail(DMEM_PLUGIN_FORMAT_ERROR,
                "packed tensor " + describe(packed) +
                    ": weight_format is not 0 (row); re-save it with a current bitsandbytes");
  std::vector<float> row(l.cols);
  auto* out = static_cast<std::uint8_t*>(dst.data);
  for (std::uint64_t r = 0; r < l.rows; ++r) {
    float* y = to == dmem::DType::f32 ? reinterpret_cast<float*>(out + r * l.cols * 4) : row.data();
    dequantize_row(cb + r * l.cols, scb[r], l.cols, y);
    if (to != dmem::DType::f32) {
      const dmem::Status s =
          dmem::convert(dmem::DType::f32, row.data(), to, out + r * l.cols * 2, l.cols);
      if (!s.is_ok()) return fail(static_cast<std::int32_t>(s.code()), s.message());
    }
  }
  return Outcome::ok();
}

Outcome BnbInt8Quantizer::linear(const dmem_plugin_tensor& x, const dmem_plugin_tensor& weight,
                                 const dmem_plugin_tensor* bias, dmem_plugin_tensor& y,
                                 void* stream) const {
  if (auto o = check_packed(weight); !o.is_ok()) return o;
  if (weight.device != DMEM_PLUGIN_DEVICE_CUDA || x.device != DMEM_PLUGIN_DEVICE_CUDA ||
      y.device != DMEM_PLUGIN_DEVICE_CUDA || (bias && bias->device != DMEM_PLUGIN_DEVICE_CUDA))
    return fail(DMEM_PLUGIN_UNSUPPORTED,
                "linear: bnb_int8 runs on CUDA only (its int8 GEMM is cuBLASLt's); place this "
                "component on a CUDA device, or choose a quantizer that runs on the CPU (gguf)");
  if (!cuda::compiled())
    return fail(DMEM_PLUGIN_UNSUPPORTED, "linear: this bnb_int8 plugin was built without CUDA");
  if (weight.rank != 2)
    return fail(DMEM_PLUGIN_INVALID_ARGUMENT,
                "linear: weight " + describe(weight) + " must be [out, in]");
  const std::uint64_t out = weight.shape[0], in = weight.shape[1];
  const auto xs = dmem_plugins::rows_cols(x), ys = dmem_plugins::rows_cols(y);
  const std::size_t es = dmem::plugin::dtype_size(x.dtype);
  dmem::DType xt{};
  if (!dmem_plugins::float_dtype(x.dtype, xt) || y.dtype != x.dtype ||
      (bias && bias->dtype != x.dtype))
    return fail(DMEM_PLUGIN_UNSUPPORTED, "linear: x " + describe(x) + ", y " + describe(y) +
                                             " (and bias) must share one of f32, f16, bf16");
  if (x.rank == 0 || y.rank != x.rank || xs.cols != in || ys.cols != out || ys.rows != xs.rows ||
      !x.data || !y.data || x.nbytes < xs.rows * in * es || y.nbytes < ys.rows * out * es ||
      (bias && (bias->rank != 1 || bias->shape[0] != out || !bias->data)))
    return fail(DMEM_PLUGIN_INVALID_ARGUMENT,
                "linear: x " + describe(x) + ", weight " + describe(weight) + ", y " + describe(y) +
                    " do not agree (x [..., in], weight [out, in], y [..., out])");
  const auto* base = static_cast<const std::uint8_t*>(weight.data);
  const cuda::Weight w{reinterpret_cast<const float*>(base),
                       reinterpret_cast<const std::int8_t*>(base + 4 * out), out, in};
  const std::string e = cuda::linear(w, x.data, bias ? bias->data : nullptr, y.data,
                                     cuda_float(x.dtype), xs.rows, threshold_, stream);
  return e.empty() ? Outcome::ok() : fail(DMEM_PLUGIN_INTERNAL, "bnb_int8 CUDA linear: " + e);
}

}  // namespace dmem_bnb
