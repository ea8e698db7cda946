#include "gguf_quantizer.hpp"

#include <cmath>
#include <string>
#include <vector>

#include "cpu_linear.hpp"
#include "dmem/block_quant.hpp"
#include "gguf_cuda.hpp"
#include "kquant_ref.hpp"
#include "tensor_view.hpp"

namespace dmem_gguf {

namespace {

using dmem::plugin::Outcome;
using dmem_plugins::describe;
using dmem_plugins::rows_cols;

constexpr std::uint64_t kAcceptedDtypes = DMEM_PLUGIN_DTYPE_BIT(DMEM_PLUGIN_DTYPE_F32) |
                                          DMEM_PLUGIN_DTYPE_BIT(DMEM_PLUGIN_DTYPE_F16) |
                                          DMEM_PLUGIN_DTYPE_BIT(DMEM_PLUGIN_DTYPE_BF16);

Outcome fail(std::int32_t code, std::string message) {
  return {code, std::move(message)};
}

Outcome from_status(const dmem::Status& s) {
  if (s.is_ok()) return Outcome::ok();
  std::string m = s.message();
  if (!s.hint().empty()) m.append(" (").append(s.hint()).append(")");
  return {static_cast<std::int32_t>(s.code()), std::move(m)};
}

// Quantizes `count` f32 values (whole blocks) with the k-quant references here, the others
// with dmem's core references.
dmem::Status quantize_blocks(const GgufType& t, const float* x, std::uint8_t* b,
                             std::uint64_t count) {
  void (*kq)(const float*, std::uint8_t*) noexcept = nullptr;
  if (t.dtype == dmem::DType::q4_k) kq = quantize_block_q4_k;
  if (t.dtype == dmem::DType::q5_k) kq = quantize_block_q5_k;
  if (t.dtype == dmem::DType::q6_k) kq = quantize_block_q6_k;
  if (!kq) return dmem::quantize(t.dtype, x, b, count);
  for (std::uint64_t i = 0; i < count / t.block_elems; ++i)
    kq(x + i * t.block_elems, b + i * t.block_bytes);
  return dmem::Status::ok();
}

std::uint64_t row_bytes(const GgufType& t, std::uint64_t cols) {
  return cols / t.block_elems * t.block_bytes;
}

}  // namespace

Outcome GgufQuantizer::configure(const dmem::plugin::Params& params) {
  for (std::size_t i = 0; i < params.size(); ++i)
    if (params.key(i) != "type")
      return fail(DMEM_PLUGIN_INVALID_ARGUMENT,
                  std::string("unknown parameter '")
                          .append(params.key(i))
                          .append("': the gguf quantizer takes type=<") +
                      type_names(false) + ">");
  const std::string_view name = params.get("type", "q8_0");
  type_ = find_type(name);
  if (!type_)
    return fail(DMEM_PLUGIN_INVALID_ARGUMENT,
                std::string("unknown gguf type '").append(name).append("': choose one of ") +
                    type_names(false));
  return Outcome::ok();
}

Outcome GgufQuantizer::caps(dmem::plugin::Caps& c) const {
  c.exec_devices = DMEM_PLUGIN_DEVICE_CPU;
  if (cuda::compiled() && cuda::has_kernel(type_->ggml_id)) {
    c.exec_devices |= DMEM_PLUGIN_DEVICE_CUDA;
    c.cuda_archs = cuda::archs();
  }
  c.storage_tiers = DMEM_PLUGIN_TIER_VRAM | DMEM_PLUGIN_TIER_PINNED | DMEM_PLUGIN_TIER_PAGEABLE |
                    DMEM_PLUGIN_TIER_DISK;
  c.flags = DMEM_PLUGIN_QFLAG_MOVES_PACKED;
  c.input_dtypes = kAcceptedDtypes;
  c.block_size = type_->block_elems;
  c.quality_tier = type_->quality;
  c.speed_factor = type_->speed;
  c.variant = type_->name;
  c.display = std::string("gguf ") + type_->name;
  return Outcome::ok();
}

Outcome GgufQuantizer::stored_bytes(const dmem_plugin_tensor& t, std::uint64_t& bytes) const {
  if (!(DMEM_PLUGIN_DTYPE_BIT(t.dtype) & kAcceptedDtypes) || t.dtype >= 64)
    return fail(DMEM_PLUGIN_UNSUPPORTED, "tensor " + describe(t) + ": gguf " + type_->name +
                                             " quantizes f32, f16 or bf16 tensors only");
  if (t.rank == 0)
    return fail(DMEM_PLUGIN_INVALID_ARGUMENT,
                "tensor " + describe(t) + ": a scalar has no rows to quantize; keep it native");
  std::uint64_t n = 0;
  if (!dmem::plugin::element_count(t, n))
    return fail(DMEM_PLUGIN_LIMIT_EXCEEDED, "tensor " + describe(t) + ": too many elements");
  const auto s = rows_cols(t);
  if (s.cols % type_->block_elems != 0)
    return fail(DMEM_PLUGIN_INVALID_ARGUMENT,
                "tensor " + describe(t) + ": its rows (last dimension " + std::to_string(s.cols) +
                    ") are not a whole number of gguf " + type_->name + " blocks of " +
                    std::to_string(type_->block_elems) +
                    " values; keep this tensor native or pick a type with a block size that "
                    "divides " +
                    std::to_string(s.cols) + " (q8_0, q4_0, ... use 32)");
  const std::uint64_t per_row = row_bytes(*type_, s.cols);
  if (s.rows != 0 && per_row > UINT64_MAX / s.rows)
    return fail(DMEM_PLUGIN_LIMIT_EXCEEDED, "tensor " + describe(t) + ": too large");
  bytes = s.rows * per_row;
  return Outcome::ok();
}

Outcome GgufQuantizer::check_packed(const dmem_plugin_tensor& packed) const {
  std::uint64_t need = 0;
  if (auto o = stored_bytes(packed, need); !o.is_ok()) return o;
  if (packed.nbytes < need || (need && !packed.data))
    return fail(DMEM_PLUGIN_INVALID_ARGUMENT,
                "packed tensor " + describe(packed) + ": " + std::to_string(packed.nbytes) +
                    " bytes given, gguf " + type_->name + " needs " + std::to_string(need));
  return Outcome::ok();
}

Outcome GgufQuantizer::quantize(const dmem_plugin_tensor& src, dmem_plugin_tensor& packed,
                                void* /*stream*/) const {
  std::uint64_t need = 0;
  if (auto o = stored_bytes(src, need); !o.is_ok()) return o;
  if (!type_->quantizes)
    return fail(DMEM_PLUGIN_UNSUPPORTED,
                std::string("gguf ") + type_->name +
                    " is dequantize-only here: quantize with llama.cpp's tools and load the "
                    "GGUF, or pick one of " +
                    type_names(true));
  if (src.device != DMEM_PLUGIN_DEVICE_CPU || packed.device != DMEM_PLUGIN_DEVICE_CPU)
    return fail(DMEM_PLUGIN_UNSUPPORTED,
                "tensor " + describe(src) + ": gguf quantizes on the CPU; pass CPU buffers");
  std::uint64_t n = 0;
  (void)dmem::plugin::element_count(src, n);
  const std::size_t esize = dmem::plugin::dtype_size(src.dtype);
  if ((n && !src.data) || src.nbytes < n * esize || packed.nbytes < need || (need && !packed.data))
    return fail(DMEM_PLUGIN_INVALID_ARGUMENT,
                "tensor " + describe(src) + ": source holds " + std::to_string(src.nbytes) +
                    " bytes (needs " + std::to_string(n * esize) + "), packed buffer " +
                    std::to_string(packed.nbytes) + " (needs " + std::to_string(need) + ")");
  dmem::DType from{};
  (void)dmem_plugins::float_dtype(src.dtype, from);
  const auto s = rows_cols(src);
  std::vector<float> row(s.cols);
  const auto* in = static_cast<const std::uint8_t*>(src.data);
  auto* out = static_cast<std::uint8_t*>(packed.data);
  const std::uint64_t per_row = row_bytes(*type_, s.cols);
  for (std::uint64_t r = 0; r < s.rows; ++r) {
    const float* x = nullptr;
    if (from == dmem::DType::f32) {
      x = reinterpret_cast<const float*>(in + r * s.cols * 4);
    } else {
      if (auto o = from_status(
              dmem::convert(from, in + r * s.cols * esize, dmem::DType::f32, row.data(), s.cols));
          !o.is_ok())
        return o;
      x = row.data();
    }
    // ggml's searches assume finite values (its nearest_int asserts |v| < 2^22).
    for (std::uint64_t c = 0; c < s.cols; ++c)
      if (!std::isfinite(x[c]))
        return fail(DMEM_PLUGIN_INVALID_ARGUMENT,
                    "tensor " + describe(src) + ": element [" + std::to_string(r) + ", " +
                        std::to_string(c) +
                        "] is not finite; gguf types store finite values "
                        "only (fix or keep the tensor native)");
    if (auto o = from_status(quantize_blocks(*type_, x, out + r * per_row, s.cols)); !o.is_ok())
      return o;
  }
  return Outcome::ok();
}

Outcome GgufQuantizer::dequantize(const dmem_plugin_tensor& packed, dmem_plugin_tensor& dst,
                                  void* stream) const {
  if (auto o = check_packed(packed); !o.is_ok()) return o;
  dmem::DType to{};
  if (!dmem_plugins::float_dtype(dst.dtype, to))
    return fail(DMEM_PLUGIN_UNSUPPORTED,
                "destination " + describe(dst) + ": gguf dequantizes to f32, f16 or bf16");
  std::uint64_t n = 0;
  (void)dmem::plugin::element_count(packed, n);
  if (dst.rank != packed.rank || !std::equal(dst.shape, dst.shape + dst.rank, packed.shape) ||
      dst.nbytes < n * dmem::plugin::dtype_size(dst.dtype) || (n && !dst.data))
    return fail(DMEM_PLUGIN_INVALID_ARGUMENT, "destination " + describe(dst) +
                                                  " does not match packed tensor " +
                                                  describe(packed) + " or is too small");
  if (n == 0) return Outcome::ok();
  if (packed.device != dst.device)
    return fail(DMEM_PLUGIN_UNSUPPORTED,
                "packed tensor " + describe(packed) +
                    " and its destination are on different devices; copy first");
  if (packed.device == DMEM_PLUGIN_DEVICE_CUDA) {
    if (!cuda::compiled() || !cuda::has_kernel(type_->ggml_id))
      return fail(DMEM_PLUGIN_UNSUPPORTED,
                  std::string("gguf ") + type_->name +
                      " has no CUDA kernel in this build (q8_0 q4_0 q4_k q5_k q6_k do); "
                      "dequantize on the CPU");
    const auto out = to == dmem::DType::f32   ? cuda::Out::f32
                     : to == dmem::DType::f16 ? cuda::Out::f16
                                              : cuda::Out::bf16;
    const std::string e = cuda::dequantize(type_->ggml_id, packed.data, dst.data, out,
                                           n / type_->block_elems, stream);
    if (!e.empty()) return fail(DMEM_PLUGIN_INTERNAL, "gguf CUDA dequantize: " + e);
    return Outcome::ok();
  }
  if (to == dmem::DType::f32)
    return from_status(
        dmem::dequantize(type_->dtype, packed.data, static_cast<float*>(dst.data), n));
  // Narrow outputs: a row at a time through f32.
  const auto s = rows_cols(packed);
  std::vector<float> row(s.cols);
  const std::uint64_t per_row = row_bytes(*type_, s.cols);
  for (std::uint64_t r = 0; r < s.rows; ++r) {
    if (auto o = from_status(dmem::dequantize(
            type_->dtype, static_cast<const std::uint8_t*>(packed.data) + r * per_row, row.data(),
            s.cols));
        !o.is_ok())
      return o;
    if (auto o = from_status(dmem::convert(dmem::DType::f32, row.data(), to,
                                           static_cast<std::uint8_t*>(dst.data) + r * s.cols * 2,
                                           s.cols));
        !o.is_ok())
      return o;
  }
  return Outcome::ok();
}

Outcome GgufQuantizer::linear(const dmem_plugin_tensor& x, const dmem_plugin_tensor& weight,
                              const dmem_plugin_tensor* bias, dmem_plugin_tensor& y,
                              void* stream) const {
  if (auto o = check_packed(weight); !o.is_ok()) return o;
  if (weight.rank != 2)
    return fail(DMEM_PLUGIN_INVALID_ARGUMENT,
                "linear: weight " + describe(weight) + " must be [out, in]");
  for (const dmem_plugin_tensor* t : {&x, static_cast<const dmem_plugin_tensor*>(&y), bias})
    if (t && (t->dtype != DMEM_PLUGIN_DTYPE_F32 || t->device != weight.device || !t->data))
      return fail(DMEM_PLUGIN_UNSUPPORTED,
                  "linear: operand " + describe(*t) +
                      " must be f32 with data, on the same device as the weight");
  const std::uint64_t out = weight.shape[0], in = weight.shape[1];
  const auto xs = rows_cols(x), ys = rows_cols(y);
  if (x.rank == 0 || y.rank != x.rank || xs.cols != in || ys.cols != out || ys.rows != xs.rows ||
      x.nbytes < xs.rows * in * 4 || y.nbytes < ys.rows * out * 4 ||
      (bias && (bias->rank != 1 || bias->shape[0] != out || bias->nbytes < out * 4)))
    return fail(DMEM_PLUGIN_INVALID_ARGUMENT,
                "linear: x " + describe(x) + ", weight " + describe(weight) + ", y " + describe(y) +
                    (bias ? ", bias " + describe(*bias) : std::string()) +
                    " do not agree (x [..., in], weight [out, in], y [..., out], bias [out])");
  const float* bv = bias ? static_cast<const float*>(bias->data) : nullptr;
  if (xs.rows == 0 || out == 0) return Outcome::ok();
  if (weight.device == DMEM_PLUGIN_DEVICE_CUDA) {
    if (!cuda::compiled() || !cuda::has_kernel(type_->ggml_id))
      return fail(DMEM_PLUGIN_UNSUPPORTED, std::string("gguf ") + type_->name +
                                               " has no CUDA kernel in this build; run this "
                                               "layer on the CPU");
    const std::string e =
        cuda::linear(type_->ggml_id, static_cast<const float*>(x.data), weight.data, bv,
                     static_cast<float*>(y.data), xs.rows, in, out, stream);
    if (!e.empty()) return fail(DMEM_PLUGIN_INTERNAL, "gguf CUDA linear: " + e);
    return Outcome::ok();
  }
  const std::uint64_t per_row = row_bytes(*type_, in);
  const auto* w = static_cast<const std::uint8_t*>(weight.data);
  dmem::Status failed;
  const bool ok = tiled_linear(
      static_cast<const float*>(x.data), xs.rows, in, out, bv, static_cast<float*>(y.data),
      [&](std::uint64_t first, std::uint64_t count, float* dst) {
        failed = dmem::dequantize(type_->dtype, w + first * per_row, dst, count * in);
        return failed.is_ok();
      });
  return ok ? Outcome::ok() : from_status(failed);
}

}  // namespace dmem_gguf
