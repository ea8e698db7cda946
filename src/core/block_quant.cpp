// GGML block layouts (FORMATS.md §2.6; ggml-common.h). Each function handles one block; the
// arithmetic order follows ggml's reference so results are bit-exact. f16 scales keep NaN
// payloads (f16_to_f32). dequant_avx2.cpp has vectorised twins of the common types, used when
// cpu_path() is AVX2 and giving the same bits.
#include "dmem/block_quant.hpp"

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <string>

#include "core/cpu_features.hpp"
#include "core/dequant_kernels.hpp"

namespace dmem {
inline namespace v1 {

namespace {

using u8 = std::uint8_t;
using detail::scale_min_k4;
constexpr auto half_at = detail::block_half_at;

void put_half(u8* p, float v) {
  const std::uint16_t h = f32_to_f16(v);
  std::memcpy(p, &h, 2);
}

// ---- dequantization, one block each --------------------------------------------------------

void dq_q4_0(const u8* b, float* y) {
  const float d = half_at(b);
  const u8* qs = b + 2;
  for (int j = 0; j < 16; ++j) {
    y[j] = static_cast<float>((qs[j] & 0x0F) - 8) * d;
    y[j + 16] = static_cast<float>((qs[j] >> 4) - 8) * d;
  }
}

void dq_q4_1(const u8* b, float* y) {
  const float d = half_at(b), m = half_at(b + 2);
  const u8* qs = b + 4;
  for (int j = 0; j < 16; ++j) {
    y[j] = static_cast<float>(qs[j] & 0x0F) * d + m;
    y[j + 16] = static_cast<float>(qs[j] >> 4) * d + m;
  }
}

void dq_q5(const u8* qh_bytes, const u8* qs, float d, float m, int offset, float* y) {
  std::uint32_t qh;
  std::memcpy(&qh, qh_bytes, 4);
  for (int j = 0; j < 16; ++j) {
    const auto xh0 = static_cast<int>(((qh >> j) << 4) & 0x10);
    const auto xh1 = static_cast<int>((qh >> (j + 12)) & 0x10);
    const int x0 = ((qs[j] & 0x0F) | xh0) - offset;
    const int x1 = ((qs[j] >> 4) | xh1) - offset;
    y[j] = offset ? static_cast<float>(x0) * d : static_cast<float>(x0) * d + m;
    y[j + 16] = offset ? static_cast<float>(x1) * d : static_cast<float>(x1) * d + m;
  }
}
void dq_q5_0(const u8* b, float* y) {
  dq_q5(b + 2, b + 6, half_at(b), 0.0f, 16, y);
}
void dq_q5_1(const u8* b, float* y) {
  dq_q5(b + 4, b + 8, half_at(b), half_at(b + 2), 0, y);
}

void dq_q8_0(const u8* b, float* y) {
  const float d = half_at(b);
  for (int j = 0; j < 32; ++j) y[j] = static_cast<float>(static_cast<std::int8_t>(b[2 + j])) * d;
}

// Q2_K: scales[16] qs[64] d dmin.
void dq_q2_k(const u8* b, float* y) {
  const u8* scales = b;
  const u8* qs = b + 16;
  const float d = half_at(b + 80), dmin = half_at(b + 82);
  for (int chunk = 0; chunk < 2; ++chunk) {
    for (int j = 0; j < 4; ++j) {
      for (int l = 0; l < 32; ++l) {
        const u8 sc = scales[chunk * 8 + j * 2 + l / 16];
        const float dl = d * static_cast<float>(sc & 0x0F);
        const float ml = dmin * static_cast<float>(sc >> 4);
        const int q = (qs[chunk * 32 + l] >> (2 * j)) & 3;
        y[chunk * 128 + j * 32 + l] = dl * static_cast<float>(q) - ml;
      }
    }
  }
}

// Q3_K: hmask[32] qs[64] scales[12] d. 6-bit signed scales packed as 4 low + 2 high bits.
void dq_q3_k(const u8* b, float* y) {
  const u8* hmask = b;
  const u8* qs = b + 32;
  const u8* sc = b + 96;
  const float d = half_at(b + 108);
  float scale[16];
  for (int k = 0; k < 16; ++k) {
    const int lo = (sc[k % 8] >> (4 * (k / 8))) & 0x0F;
    const int hi = (sc[8 + k % 4] >> (2 * (k / 4))) & 0x03;
    scale[k] = d * static_cast<float>((lo | (hi << 4)) - 32);
  }
  for (int chunk = 0; chunk < 2; ++chunk) {
    for (int j = 0; j < 4; ++j) {
      for (int l = 0; l < 32; ++l) {
        const int v = chunk * 128 + j * 32 + l;
        const int ql = (qs[chunk * 32 + l] >> (2 * j)) & 3;
        const int high = (hmask[l] >> (chunk * 4 + j)) & 1;  // a clear bit subtracts 4
        y[v] = scale[v / 16] * static_cast<float>(ql - (high ? 0 : 4));
      }
    }
  }
}

// a - b with the NaN rule of x86 (and so of numpy / gguf-py and the AVX2 path): a NaN first
// operand wins, else a NaN second one, quieted either way. Written out because a compiler may
// turn `a - b` into `a + (-b)`, which flips a NaN's sign (clang -Os did).
inline float sub_x86(float a, float b) {
  if (std::isnan(a)) return std::bit_cast<float>(std::bit_cast<std::uint32_t>(a) | 0x00400000u);
  if (std::isnan(b)) return std::bit_cast<float>(std::bit_cast<std::uint32_t>(b) | 0x00400000u);
  return a - b;
}

// Q4_K: d dmin scales[12] qs[128].
void dq_q4_k(const u8* b, float* y) {
  const float d = half_at(b), dmin = half_at(b + 2);
  const u8* scales = b + 4;
  const u8* q = b + 16;
  for (int c = 0, is = 0; c < 4; ++c, is += 2, q += 32) {
    u8 sc, m;
    scale_min_k4(is, scales, sc, m);
    const float d1 = d * sc, m1 = dmin * m;
    scale_min_k4(is + 1, scales, sc, m);
    const float d2 = d * sc, m2 = dmin * m;
    for (int l = 0; l < 32; ++l) y[64 * c + l] = sub_x86(d1 * static_cast<float>(q[l] & 0x0F), m1);
    for (int l = 0; l < 32; ++l)
      y[64 * c + 32 + l] = sub_x86(d2 * static_cast<float>(q[l] >> 4), m2);
  }
}

// Q5_K: d dmin scales[12] qh[32] qs[128].
void dq_q5_k(const u8* b, float* y) {
  const float d = half_at(b), dmin = half_at(b + 2);
  const u8* scales = b + 4;
  const u8* qh = b + 16;
  const u8* ql = b + 48;
  u8 u1 = 1, u2 = 2;
  for (int c = 0, is = 0; c < 4; ++c, is += 2, ql += 32) {
    u8 sc, m;
    scale_min_k4(is, scales, sc, m);
    const float d1 = d * sc, m1 = dmin * m;
    scale_min_k4(is + 1, scales, sc, m);
    const float d2 = d * sc, m2 = dmin * m;
    for (int l = 0; l < 32; ++l)
      y[64 * c + l] =
          sub_x86(d1 * static_cast<float>((ql[l] & 0x0F) + ((qh[l] & u1) ? 16 : 0)), m1);
    for (int l = 0; l < 32; ++l)
      y[64 * c + 32 + l] =
          sub_x86(d2 * static_cast<float>((ql[l] >> 4) + ((qh[l] & u2) ? 16 : 0)), m2);
    u1 = static_cast<u8>(u1 << 2);
    u2 = static_cast<u8>(u2 << 2);
  }
}

// Q6_K: ql[128] qh[64] scales[16] (int8) d.
void dq_q6_k(const u8* b, float* y) {
  const u8* ql = b;
  const u8* qh = b + 128;
  const auto* sc = reinterpret_cast<const std::int8_t*>(b + 192);
  const float d = half_at(b + 208);
  for (int half = 0; half < 2; ++half, ql += 64, qh += 32, sc += 8, y += 128) {
    for (int l = 0; l < 32; ++l) {
      const int is = l / 16;
      const int q1 = ((ql[l] & 0x0F) | (((qh[l] >> 0) & 3) << 4)) - 32;
      const int q2 = ((ql[l + 32] & 0x0F) | (((qh[l] >> 2) & 3) << 4)) - 32;
      const int q3 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
      const int q4 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
      y[l] = d * static_cast<float>(sc[is + 0]) * static_cast<float>(q1);
      y[l + 32] = d * static_cast<float>(sc[is + 2]) * static_cast<float>(q2);
      y[l + 64] = d * static_cast<float>(sc[is + 4]) * static_cast<float>(q3);
      y[l + 96] = d * static_cast<float>(sc[is + 6]) * static_cast<float>(q4);
    }
  }
}

constexpr std::int8_t kIq4nl[16] = {-127, -104, -83, -65, -49, -35, -22, -10,
                                    1,    13,   25,  38,  53,  69,  89,  113};
void dq_iq4_nl(const u8* b, float* y) {
  const float d = half_at(b);
  for (int j = 0; j < 16; ++j) {
    y[j] = d * static_cast<float>(kIq4nl[b[2 + j] & 0x0F]);
    y[j + 16] = d * static_cast<float>(kIq4nl[b[2 + j] >> 4]);
  }
}

constexpr std::int8_t kMxfp4[16] = {0, 1, 2, 3, 4, 6, 8, 12, 0, -1, -2, -3, -4, -6, -8, -12};
// E8M0 scale halved (the table above holds doubled e2m1 values): 2^(e - 128).
float e8m0_half(u8 e) {
  const std::uint32_t bits = e < 2 ? (0x00200000u << e) : (static_cast<std::uint32_t>(e - 1) << 23);
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}
void dq_mxfp4(const u8* b, float* y) {
  const float d = e8m0_half(b[0]);
  for (int j = 0; j < 16; ++j) {
    y[j] = d * static_cast<float>(kMxfp4[b[1 + j] & 0x0F]);
    y[j + 16] = d * static_cast<float>(kMxfp4[b[1 + j] >> 4]);
  }
}

// ---- reference quantizers ------------------------------------------------------------------

void q_q8_0(const float* x, u8* b) {
  float amax = 0.0f;
  for (int j = 0; j < 32; ++j) amax = std::max(amax, std::fabs(x[j]));
  const float d = amax / 127.0f;
  const float id = d != 0.0f ? 1.0f / d : 0.0f;
  put_half(b, d);
  for (int j = 0; j < 32; ++j)
    b[2 + j] = static_cast<u8>(static_cast<std::int8_t>(std::roundf(x[j] * id)));
}

// Signed max by magnitude (the first one found), as ggml.
float signed_absmax(const float* x) {
  float amax = 0.0f, max = 0.0f;
  for (int j = 0; j < 32; ++j) {
    if (amax < std::fabs(x[j])) {
      amax = std::fabs(x[j]);
      max = x[j];
    }
  }
  return max;
}

void q_q4_0(const float* x, u8* b) {
  const float d = signed_absmax(x) / -8.0f;
  const float id = d != 0.0f ? 1.0f / d : 0.0f;
  put_half(b, d);
  for (int j = 0; j < 16; ++j) {
    const auto x0 = std::min<int>(15, static_cast<std::int8_t>(x[j] * id + 8.5f));
    const auto x1 = std::min<int>(15, static_cast<std::int8_t>(x[j + 16] * id + 8.5f));
    b[2 + j] = static_cast<u8>(x0 | (x1 << 4));
  }
}

void q_q5_0(const float* x, u8* b) {
  const float d = signed_absmax(x) / -16.0f;
  const float id = d != 0.0f ? 1.0f / d : 0.0f;
  put_half(b, d);
  std::uint32_t qh = 0;
  for (int j = 0; j < 16; ++j) {
    const auto x0 = std::min<int>(31, static_cast<std::int8_t>(x[j] * id + 16.5f));
    const auto x1 = std::min<int>(31, static_cast<std::int8_t>(x[j + 16] * id + 16.5f));
    b[6 + j] = static_cast<u8>((x0 & 0x0F) | ((x1 & 0x0F) << 4));
    qh |= static_cast<std::uint32_t>((x0 & 0x10) >> 4) << j;
    qh |= static_cast<std::uint32_t>((x1 & 0x10) >> 4) << (j + 16);
  }
  std::memcpy(b + 2, &qh, 4);
}

void min_max(const float* x, float& lo, float& hi) {
  lo = x[0];
  hi = x[0];
  for (int j = 1; j < 32; ++j) {
    lo = std::min(lo, x[j]);
    hi = std::max(hi, x[j]);
  }
}

void q_q4_1(const float* x, u8* b) {
  float lo, hi;
  min_max(x, lo, hi);
  const float d = (hi - lo) / 15.0f;
  const float id = d != 0.0f ? 1.0f / d : 0.0f;
  put_half(b, d);
  put_half(b + 2, lo);
  for (int j = 0; j < 16; ++j) {
    const auto x0 = std::min<int>(15, static_cast<std::int8_t>((x[j] - lo) * id + 0.5f));
    const auto x1 = std::min<int>(15, static_cast<std::int8_t>((x[j + 16] - lo) * id + 0.5f));
    b[4 + j] = static_cast<u8>(x0 | (x1 << 4));
  }
}

void q_q5_1(const float* x, u8* b) {
  float lo, hi;
  min_max(x, lo, hi);
  const float d = (hi - lo) / 31.0f;
  const float id = d != 0.0f ? 1.0f / d : 0.0f;
  put_half(b, d);
  put_half(b + 2, lo);
  std::uint32_t qh = 0;
  for (int j = 0; j < 16; ++j) {
    const auto x0 = static_cast<int>(static_cast<u8>((x[j] - lo) * id + 0.5f));
    const auto x1 = static_cast<int>(static_cast<u8>((x[j + 16] - lo) * id + 0.5f));
    b[8 + j] = static_cast<u8>((x0 & 0x0F) | ((x1 & 0x0F) << 4));
    qh |= static_cast<std::uint32_t>((x0 & 0x10) >> 4) << j;
    qh |= static_cast<std::uint32_t>((x1 & 0x10) >> 4) << (j + 16);
  }
  std::memcpy(b + 4, &qh, 4);
}

using DequantFn = void (*)(const u8*, float*);
using QuantFn = void (*)(const float*, u8*);

DequantFn dequant_fn(DType t) {
  switch (t) {
    case DType::q4_0:
      return dq_q4_0;
    case DType::q4_1:
      return dq_q4_1;
    case DType::q5_0:
      return dq_q5_0;
    case DType::q5_1:
      return dq_q5_1;
    case DType::q8_0:
      return dq_q8_0;
    case DType::q2_k:
      return dq_q2_k;
    case DType::q3_k:
      return dq_q3_k;
    case DType::q4_k:
      return dq_q4_k;
    case DType::q5_k:
      return dq_q5_k;
    case DType::q6_k:
      return dq_q6_k;
    case DType::iq4_nl:
      return dq_iq4_nl;
    case DType::mxfp4:
      return dq_mxfp4;
    default:
      return nullptr;
  }
}

QuantFn quant_fn(DType t) {
  switch (t) {
    case DType::q4_0:
      return q_q4_0;
    case DType::q4_1:
      return q_q4_1;
    case DType::q5_0:
      return q_q5_0;
    case DType::q5_1:
      return q_q5_1;
    case DType::q8_0:
      return q_q8_0;
    default:
      return nullptr;
  }
}

Status check_count(DType type, std::size_t count, const void* a, const void* b) {
  const auto& info = dtype_info(type);
  if (count % info.block_elems != 0) {
    return Status(Errc::invalid_argument,
                  std::to_string(count) + " values are not a whole number of " +
                      std::string(info.name) + " blocks of " + std::to_string(info.block_elems))
        .with_hint(
            "GGML block types quantize along rows whose length is a multiple of the block size");
  }
  if (count != 0 && (a == nullptr || b == nullptr))
    return Status(Errc::invalid_argument, "null buffer");
  return Status::ok();
}

}  // namespace

bool can_dequantize(DType type) noexcept {
  return dequant_fn(type) != nullptr;
}
bool can_quantize(DType type) noexcept {
  return quant_fn(type) != nullptr;
}

Status dequantize(DType type, const void* blocks, float* out, std::size_t count) noexcept {
  const DequantFn fn = dequant_fn(type);
  if (!fn) {
    return Status(Errc::unsupported, "no dequantizer for " + std::string(dtype_name(type)))
        .with_hint("supported: q4_0 q4_1 q5_0 q5_1 q8_0 q2_k q3_k q4_k q5_k q6_k iq4_nl mxfp4");
  }
  DMEM_TRY(check_count(type, count, blocks, out));
  const auto& info = dtype_info(type);
  const auto* b = static_cast<const u8*>(blocks);
  if (detail::cpu_path() == detail::CpuPath::avx2) {
    if (const auto vec = detail::dequant_blocks_avx2(type)) {
      vec(b, out, count / info.block_elems);
      return Status::ok();
    }
  }
  for (std::size_t i = 0; i < count / info.block_elems; ++i)
    fn(b + i * info.block_bytes, out + i * info.block_elems);
  return Status::ok();
}

Status quantize(DType type, const float* in, void* blocks, std::size_t count) noexcept {
  const QuantFn fn = quant_fn(type);
  if (!fn) {
    return Status(Errc::unsupported, "no reference quantizer for " + std::string(dtype_name(type)))
        .with_hint("supported here: q4_0 q4_1 q5_0 q5_1 q8_0; k-quants come with the gguf plugin");
  }
  DMEM_TRY(check_count(type, count, in, blocks));
  const auto& info = dtype_info(type);
  auto* b = static_cast<u8*>(blocks);
  for (std::size_t i = 0; i < count / info.block_elems; ++i)
    fn(in + i * info.block_elems, b + i * info.block_bytes);
  return Status::ok();
}

}  // namespace v1
}  // namespace dmem
