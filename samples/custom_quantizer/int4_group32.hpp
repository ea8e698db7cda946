// A complete out-of-tree quantizer: symmetric int4 with one f32 scale per group of 32 weights
// along the input dimension, on the CPU. It is what docs/plugin-guide.md ("A plugin in an
// afternoon") walks through; copy it, rename the id, change the arithmetic.
//
// Stored layout of a [rows, cols] weight (cols a multiple of 32; leading dimensions count as
// rows): rows * cols / 32 f32 scales, then the codes, two per byte (low nibble first), each code
// q + 8 for q in [-7, 7]. Dequantized weight = q * scale, scale = absmax(group) / 7.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "dmem/plugin/plugin.hpp"

namespace example {

class Int4Group32Quantizer {
 public:
  // A stable id in your own namespace (dmem.* ids belong to the stock plugins).
  static constexpr const char* kId = "example.quantizer.int4_g32";
  static constexpr const char* kDisplay = "int4 g32 (example)";
  static constexpr const char* kVersion = "1.0.0";
  static constexpr std::uint64_t kGroup = 32;

  using Outcome = dmem::plugin::Outcome;

  // No parameters: anything given is a mistake the user should hear about.
  Outcome configure(const dmem::plugin::Params& params) {
    if (params.size() != 0)
      return {DMEM_PLUGIN_INVALID_ARGUMENT,
              "unknown parameter '" + std::string(params.key(0)) + "' (int4_g32 takes none)"};
    return Outcome::ok();
  }

  // What the planner and the validator read: CPU kernels only, packed data may rest anywhere
  // (offloading moves it packed), f32 input (the host widens f16/bf16 first), 4-bit quality.
  Outcome caps(dmem::plugin::Caps& c) const {
    c.exec_devices = DMEM_PLUGIN_DEVICE_CPU;
    c.storage_tiers = DMEM_PLUGIN_TIER_VRAM | DMEM_PLUGIN_TIER_PINNED | DMEM_PLUGIN_TIER_PAGEABLE |
                      DMEM_PLUGIN_TIER_DISK;
    c.flags = DMEM_PLUGIN_QFLAG_MOVES_PACKED;
    c.input_dtypes = DMEM_PLUGIN_DTYPE_BIT(DMEM_PLUGIN_DTYPE_F32);
    c.block_size = static_cast<std::uint32_t>(kGroup);
    c.quality_tier = DMEM_PLUGIN_QUALITY_Q4;
    c.speed_factor = 1.4;  // a scalar CPU kernel: slower than the stock ones
    c.variant = "int4_g32";
    c.display = kDisplay;
    return Outcome::ok();
  }

  // Exact bytes: the planner sizes every tensor with this, the loader allocates it.
  Outcome stored_bytes(const dmem_plugin_tensor& t, std::uint64_t& bytes) const {
    Shape s;
    if (Outcome o = shape_of(t, s); !o.is_ok()) return o;
    const std::uint64_t groups = s.rows * (s.cols / kGroup);
    bytes = groups * (4 + kGroup / 2);
    return Outcome::ok();
  }

  Outcome quantize(const dmem_plugin_tensor& src, dmem_plugin_tensor& packed,
                   void* /*stream*/) const {
    Shape s;
    std::uint64_t need = 0;
    if (Outcome o = stored_bytes(src, need); !o.is_ok()) return o;
    (void)shape_of(src, s);
    if (src.dtype != DMEM_PLUGIN_DTYPE_F32)
      return {DMEM_PLUGIN_UNSUPPORTED, "int4_g32 quantizes f32 (the host widens f16 and bf16)"};
    if (Outcome o = on_cpu(src, s.rows * s.cols * 4); !o.is_ok()) return o;
    if (Outcome o = on_cpu(packed, need); !o.is_ok()) return o;
    const float* x = static_cast<const float*>(src.data);
    float* scales = static_cast<float*>(packed.data);
    std::uint8_t* codes = codes_of(packed, s);
    const std::uint64_t groups = s.rows * (s.cols / kGroup);
    for (std::uint64_t g = 0; g < groups; ++g) {
      const float* in = x + g * kGroup;
      float absmax = 0.0f;
      for (std::uint64_t i = 0; i < kGroup; ++i) absmax = std::max(absmax, std::fabs(in[i]));
      const float scale = absmax / 7.0f;
      scales[g] = scale;
      std::uint8_t* out = codes + g * (kGroup / 2);
      for (std::uint64_t i = 0; i < kGroup; i += 2) {
        out[i / 2] = static_cast<std::uint8_t>(code(in[i], scale) | (code(in[i + 1], scale) << 4));
      }
    }
    // Through the host: lands in dmem's logger as "[example.quantizer.int4_g32] ...".
    std::string note = "quantized ";
    note += std::to_string(s.rows);
    note += " x ";
    note += std::to_string(s.cols);
    note += " into ";
    note += std::to_string(groups);
    note += " groups";
    dmem::plugin::log(DMEM_PLUGIN_LOG_DEBUG, note.c_str());
    return Outcome::ok();
  }

  Outcome dequantize(const dmem_plugin_tensor& packed, dmem_plugin_tensor& dst,
                     void* /*stream*/) const {
    Shape s;
    std::uint64_t need = 0;
    if (Outcome o = stored_bytes(packed, need); !o.is_ok()) return o;
    (void)shape_of(packed, s);
    if (dst.dtype != DMEM_PLUGIN_DTYPE_F32)
      return {DMEM_PLUGIN_UNSUPPORTED, "int4_g32 dequantizes to f32 only"};
    if (Outcome o = on_cpu(packed, need); !o.is_ok()) return o;
    if (Outcome o = on_cpu(dst, s.rows * s.cols * 4); !o.is_ok()) return o;
    float* y = static_cast<float*>(dst.data);
    for (std::uint64_t r = 0; r < s.rows; ++r) row(packed, s, r, y + r * s.cols);
    return Outcome::ok();
  }

  // y[n, out] = x[n, in] * W[out, in]^T + bias[out], one dequantized weight row at a time.
  Outcome linear(const dmem_plugin_tensor& x, const dmem_plugin_tensor& weight,
                 const dmem_plugin_tensor* bias, dmem_plugin_tensor& y, void* /*stream*/) const {
    Shape w;
    std::uint64_t need = 0;
    if (Outcome o = stored_bytes(weight, need); !o.is_ok()) return o;
    (void)shape_of(weight, w);
    if (weight.rank != 2 || x.rank == 0 || y.rank != x.rank || x.dtype != DMEM_PLUGIN_DTYPE_F32 ||
        y.dtype != DMEM_PLUGIN_DTYPE_F32 || x.shape[x.rank - 1] != w.cols ||
        y.shape[y.rank - 1] != w.rows)
      return {DMEM_PLUGIN_INVALID_ARGUMENT, "linear: x [n, in] f32, weight [out, in], y [n, out]"};
    const std::uint64_t tokens = rows_of(x);
    if (rows_of(y) != tokens) return {DMEM_PLUGIN_INVALID_ARGUMENT, "linear: x and y rows differ"};
    if (bias &&
        (bias->rank != 1 || bias->shape[0] != w.rows || bias->dtype != DMEM_PLUGIN_DTYPE_F32))
      return {DMEM_PLUGIN_INVALID_ARGUMENT, "linear: bias must be f32 [out]"};
    if (Outcome o = on_cpu(weight, need); !o.is_ok()) return o;
    if (Outcome o = on_cpu(x, tokens * w.cols * 4); !o.is_ok()) return o;
    if (Outcome o = on_cpu(y, tokens * w.rows * 4); !o.is_ok()) return o;
    if (bias)
      if (Outcome o = on_cpu(*bias, w.rows * 4); !o.is_ok()) return o;
    const float* xv = static_cast<const float*>(x.data);
    const float* bv = bias ? static_cast<const float*>(bias->data) : nullptr;
    float* yv = static_cast<float*>(y.data);
    std::vector<float> wrow(w.cols);
    for (std::uint64_t o = 0; o < w.rows; ++o) {
      row(weight, w, o, wrow.data());
      for (std::uint64_t n = 0; n < tokens; ++n) {
        float acc = bv ? bv[o] : 0.0f;
        for (std::uint64_t k = 0; k < w.cols; ++k) acc += xv[n * w.cols + k] * wrow[k];
        yv[n * w.rows + o] = acc;
      }
    }
    return Outcome::ok();
  }

 private:
  struct Shape {
    std::uint64_t rows = 1;
    std::uint64_t cols = 0;
  };

  // Leading dimensions are rows; the last one must be whole groups. Sizes stay far from
  // overflow (2^48 elements).
  static Outcome shape_of(const dmem_plugin_tensor& t, Shape& s) {
    if (t.rank == 0) return {DMEM_PLUGIN_UNSUPPORTED, "int4_g32 quantizes tensors of rank >= 1"};
    std::uint64_t n = 0;
    if (!dmem::plugin::element_count(t, n) || n > (std::uint64_t{1} << 48))
      return {DMEM_PLUGIN_LIMIT_EXCEEDED, "tensor too large"};
    s.cols = t.shape[t.rank - 1];
    s.rows = rows_of(t);
    if (s.cols == 0 || s.cols % kGroup != 0)
      return {DMEM_PLUGIN_UNSUPPORTED, "the last dimension is not a multiple of 32"};
    return Outcome::ok();
  }
  static std::uint64_t rows_of(const dmem_plugin_tensor& t) {
    std::uint64_t rows = 1;
    for (std::uint32_t i = 0; i + 1 < t.rank; ++i) rows *= t.shape[i];
    return rows;
  }
  static Outcome on_cpu(const dmem_plugin_tensor& t, std::uint64_t bytes) {
    if (t.device != DMEM_PLUGIN_DEVICE_CPU) return {DMEM_PLUGIN_UNSUPPORTED, "CPU tensors only"};
    if (t.nbytes < bytes || (bytes != 0 && t.data == nullptr))
      return {DMEM_PLUGIN_INVALID_ARGUMENT, "buffer smaller than the tensor"};
    return Outcome::ok();
  }
  static std::uint8_t* codes_of(const dmem_plugin_tensor& packed, const Shape& s) {
    return static_cast<std::uint8_t*>(packed.data) + s.rows * (s.cols / kGroup) * 4;
  }
  static std::uint32_t code(float v, float scale) {
    const float q = scale > 0.0f ? std::nearbyint(v / scale) : 0.0f;
    return static_cast<std::uint32_t>(std::clamp(q, -7.0f, 7.0f) + 8.0f);
  }
  // Row r of the packed weight, dequantized into out[0, cols).
  static void row(const dmem_plugin_tensor& packed, const Shape& s, std::uint64_t r, float* out) {
    const float* scales = static_cast<const float*>(packed.data);
    const std::uint8_t* codes = codes_of(packed, s);
    const std::uint64_t per_row = s.cols / kGroup;
    for (std::uint64_t g = r * per_row; g < (r + 1) * per_row; ++g)
      for (std::uint64_t i = 0; i < kGroup; ++i) {
        const std::uint8_t b = codes[g * (kGroup / 2) + i / 2];
        const int q = ((i % 2 == 0) ? (b & 0x0F) : (b >> 4)) - 8;
        out[(g - r * per_row) * kGroup + i] = static_cast<float>(q) * scales[g];
      }
  }
};

}  // namespace example
