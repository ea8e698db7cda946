// GGML k-quant reference quantizers. Every expression keeps ggml's evaluation order (float
// arithmetic is not associative): sums run front to back, products group left to right, and
// the build has no FMA contraction (baseline x86-64 / -ffp-contract=off), as the golden's ggml.
#include "kquant_ref.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "dmem/dtype.hpp"

namespace dmem_gguf {

namespace {

using u8 = std::uint8_t;

// Round to nearest, ties to even, through the float adder: valid for |f| <= 2^22 (ggml's
// nearest_int; every caller stays in that range for finite input).
int nearest_int(float f) {
  const float v = f + 12582912.0f;  // 1.5 * 2^23: the integer lands in the low mantissa bits
  std::int32_t i;
  std::memcpy(&i, &v, 4);
  return (i & 0x007FFFFF) - 0x00400000;
}

void put_half(u8* p, float v) {
  const std::uint16_t h = dmem::f32_to_f16(v);
  std::memcpy(p, &h, 2);
}
float half_at(const u8* p) {
  std::uint16_t h;
  std::memcpy(&h, p, 2);
  return dmem::f16_to_f32(h);
}

// Weighted least-squares fit of x ~ scale * L - min, L in [0, nmax], min >= 0: a first guess
// from the range, then nstep + 1 candidate scales around it (rmin + rdelta * step). Returns the
// scale and writes the (positive) minimum; L holds the chosen levels.
float fit_scale_min(int n, int nmax, const float* x, const float* w, u8* L, float* the_min,
                    u8* Laux, float rmin, float rdelta, int nstep) {
  float min = x[0], max = x[0];
  float sum_w = w[0];
  float sum_x = sum_w * x[0];
  for (int i = 1; i < n; ++i) {
    if (x[i] < min) min = x[i];
    if (x[i] > max) max = x[i];
    sum_w += w[i];
    sum_x += w[i] * x[i];
  }
  if (min > 0) min = 0;
  if (max == min) {
    std::fill(L, L + n, u8{0});
    *the_min = -min;
    return 0.0f;
  }
  float iscale = static_cast<float>(nmax) / (max - min);
  float scale = 1 / iscale;
  float best_error = 0;
  for (int i = 0; i < n; ++i) {
    const int l = nearest_int(iscale * (x[i] - min));
    L[i] = static_cast<u8>(std::max(0, std::min(nmax, l)));
    const float diff = scale * static_cast<float>(L[i]) + min - x[i];
    best_error += w[i] * (diff * diff);
  }
  for (int is = 0; is <= nstep; ++is) {
    iscale = (rmin + rdelta * static_cast<float>(is) + static_cast<float>(nmax)) / (max - min);
    float sum_l = 0, sum_l2 = 0, sum_xl = 0;
    for (int i = 0; i < n; ++i) {
      const int l = std::max(0, std::min(nmax, nearest_int(iscale * (x[i] - min))));
      Laux[i] = static_cast<u8>(l);
      const float fl = static_cast<float>(l);
      sum_l += w[i] * fl;
      sum_l2 += w[i] * fl * fl;
      sum_xl += w[i] * fl * x[i];
    }
    const float D = sum_w * sum_l2 - sum_l * sum_l;
    if (D > 0) {
      float this_scale = (sum_w * sum_xl - sum_x * sum_l) / D;
      float this_min = (sum_l2 * sum_x - sum_l * sum_xl) / D;
      if (this_min > 0) {
        this_min = 0;
        this_scale = sum_xl / sum_l2;
      }
      float cur_error = 0;
      for (int i = 0; i < n; ++i) {
        const float diff = this_scale * static_cast<float>(Laux[i]) + this_min - x[i];
        cur_error += w[i] * (diff * diff);
      }
      if (cur_error < best_error) {
        std::copy(Laux, Laux + n, L);
        best_error = cur_error;
        scale = this_scale;
        min = this_min;
      }
    }
  }
  *the_min = -min;
  return scale;
}

// Symmetric fit x ~ scale * (L - nmax), L - nmax in [-nmax, nmax - 1], weights x^2: the scale
// from the signed absmax, then 18 neighbouring scales; the best weighted fit wins.
float fit_scale_symmetric(int n, int nmax, const float* x, std::int8_t* L) {
  float max = 0, amax = 0;
  for (int i = 0; i < n; ++i) {
    const float ax = std::fabs(x[i]);
    if (ax > amax) {
      amax = ax;
      max = x[i];
    }
  }
  if (amax < 1e-15f) {  // all (nearly) zero
    std::fill(L, L + n, std::int8_t{0});
    return 0.0f;
  }
  auto level = [&](float iscale, int i) {
    return std::max(-nmax, std::min(nmax - 1, nearest_int(iscale * x[i])));
  };
  float iscale = static_cast<float>(-nmax) / max;
  float sumlx = 0, suml2 = 0;
  for (int i = 0; i < n; ++i) {
    const int l = level(iscale, i);
    L[i] = static_cast<std::int8_t>(l + nmax);
    const float fl = static_cast<float>(l);
    const float w = x[i] * x[i];
    sumlx += w * x[i] * fl;
    suml2 += w * fl * fl;
  }
  float scale = suml2 != 0 ? sumlx / suml2 : 0.0f;
  float best = scale * sumlx;
  for (int is = -9; is <= 9; ++is) {
    if (is == 0) continue;
    iscale = -(static_cast<float>(nmax) + 0.1f * static_cast<float>(is)) / max;
    sumlx = suml2 = 0;
    for (int i = 0; i < n; ++i) {
      const float fl = static_cast<float>(level(iscale, i));
      const float w = x[i] * x[i];
      sumlx += w * x[i] * fl;
      suml2 += w * fl * fl;
    }
    if (suml2 > 0 && sumlx * sumlx > best * suml2) {
      for (int i = 0; i < n; ++i) L[i] = static_cast<std::int8_t>(nmax + level(iscale, i));
      scale = sumlx / suml2;
      best = scale * sumlx;
    }
  }
  return scale;
}

// Shared by q4_k and q5_k: eight sub-blocks of 32 fitted with a scale and a minimum, both
// stored as 6-bit multiples of the block's d and dmin; then every value re-levelled against the
// stored (rounded) scales. Writes d, dmin and scales[12] at `block` and the levels to L.
void fit_k_block(const float* x, u8* block, u8* L, int nmax, float rmin, int nstep) {
  float scales[8], mins[8], weights[32];
  u8 Laux[32];
  float max_scale = 0, max_min = 0;
  for (int j = 0; j < 8; ++j) {
    const float* xs = x + 32 * j;
    float sum_x2 = 0;
    for (int l = 0; l < 32; ++l) sum_x2 += xs[l] * xs[l];
    const float av_x = std::sqrt(sum_x2 / 32);
    for (int l = 0; l < 32; ++l) weights[l] = av_x + std::fabs(xs[l]);
    scales[j] = fit_scale_min(32, nmax, xs, weights, L + 32 * j, &mins[j], Laux, rmin, 0.1f, nstep);
    max_scale = std::max(max_scale, scales[j]);
    max_min = std::max(max_min, mins[j]);
  }
  const float inv_scale = max_scale > 0 ? 63.0f / max_scale : 0.0f;
  const float inv_min = max_min > 0 ? 63.0f / max_min : 0.0f;
  u8* sc = block + 4;
  for (int j = 0; j < 8; ++j) {
    const u8 ls = std::min<u8>(63, static_cast<u8>(nearest_int(inv_scale * scales[j])));
    const u8 lm = std::min<u8>(63, static_cast<u8>(nearest_int(inv_min * mins[j])));
    if (j < 4) {
      sc[j] = ls;
      sc[j + 4] = lm;
    } else {  // low 4 bits in bytes 8..11, high 2 bits on top of bytes j-4 and j
      sc[j + 4] = static_cast<u8>((ls & 0x0F) | ((lm & 0x0F) << 4));
      sc[j - 4] = static_cast<u8>(sc[j - 4] | ((ls >> 4) << 6));
      sc[j] = static_cast<u8>(sc[j] | ((lm >> 4) << 6));
    }
  }
  put_half(block, max_scale / 63.0f);
  put_half(block + 2, max_min / 63.0f);
  const float d_all = half_at(block), dmin_all = half_at(block + 2);
  for (int j = 0; j < 8; ++j) {
    u8 s, m;
    if (j < 4) {
      s = sc[j] & 63;
      m = sc[j + 4] & 63;
    } else {
      s = static_cast<u8>((sc[j + 4] & 0x0F) | ((sc[j - 4] >> 6) << 4));
      m = static_cast<u8>((sc[j + 4] >> 4) | ((sc[j] >> 6) << 4));
    }
    const float d = d_all * s;
    if (d == 0.0f) continue;  // keeps the levels of the fit
    const float dm = dmin_all * m;
    for (int i = 0; i < 32; ++i) {
      const int l = nearest_int((x[32 * j + i] + dm) / d);
      L[32 * j + i] = static_cast<u8>(std::max(0, std::min(nmax, l)));
    }
  }
}

}  // namespace

void quantize_block_q4_k(const float* x, std::uint8_t* block) noexcept {
  u8 L[256];
  fit_k_block(x, block, L, 15, -1.0f, 20);
  u8* q = block + 16;
  for (int j = 0; j < 256; j += 64, q += 32)
    for (int l = 0; l < 32; ++l) q[l] = static_cast<u8>(L[j + l] | (L[j + l + 32] << 4));
}

void quantize_block_q5_k(const float* x, std::uint8_t* block) noexcept {
  u8 L[256];
  fit_k_block(x, block, L, 31, -0.5f, 15);
  u8* qh = block + 16;
  u8* ql = block + 48;
  std::memset(qh, 0, 32);
  u8 m1 = 1, m2 = 2;
  for (int n = 0; n < 256; n += 64, ql += 32) {
    for (int j = 0; j < 32; ++j) {
      int l1 = L[n + j], l2 = L[n + j + 32];
      if (l1 > 15) {
        l1 -= 16;
        qh[j] |= m1;
      }
      if (l2 > 15) {
        l2 -= 16;
        qh[j] |= m2;
      }
      ql[j] = static_cast<u8>(l1 | (l2 << 4));
    }
    m1 = static_cast<u8>(m1 << 2);
    m2 = static_cast<u8>(m2 << 2);
  }
}

void quantize_block_q6_k(const float* x, std::uint8_t* block) noexcept {
  std::int8_t L[256];
  float scales[16];
  float max_scale = 0, max_abs_scale = 0;
  for (int ib = 0; ib < 16; ++ib) {
    scales[ib] = fit_scale_symmetric(16, 32, x + 16 * ib, L + 16 * ib);
    const float abs_scale = std::fabs(scales[ib]);
    if (abs_scale > max_abs_scale) {
      max_abs_scale = abs_scale;
      max_scale = scales[ib];
    }
  }
  if (max_abs_scale < 1e-15f) {  // an all-zero block
    std::memset(block, 0, 210);
    return;
  }
  u8* ql = block;
  u8* qh = block + 128;
  auto* sc = reinterpret_cast<std::int8_t*>(block + 192);
  const float iscale = -128.0f / max_scale;
  put_half(block + 208, 1 / iscale);
  for (int ib = 0; ib < 16; ++ib)
    sc[ib] = static_cast<std::int8_t>(std::min(127, nearest_int(iscale * scales[ib])));
  const float d_all = half_at(block + 208);
  for (int j = 0; j < 16; ++j) {
    const float d = d_all * static_cast<float>(sc[j]);
    if (d == 0.0f) continue;
    for (int i = 0; i < 16; ++i) {
      const int l = std::max(-32, std::min(31, nearest_int(x[16 * j + i] / d)));
      L[16 * j + i] = static_cast<std::int8_t>(l + 32);
    }
  }
  for (int j = 0; j < 256; j += 128, ql += 64, qh += 32) {
    for (int l = 0; l < 32; ++l) {
      const int q1 = L[j + l] & 0xF, q2 = L[j + l + 32] & 0xF;
      const int q3 = L[j + l + 64] & 0xF, q4 = L[j + l + 96] & 0xF;
      ql[l] = static_cast<u8>(q1 | (q3 << 4));
      ql[l + 32] = static_cast<u8>(q2 | (q4 << 4));
      qh[l] = static_cast<u8>((L[j + l] >> 4) | ((L[j + l + 32] >> 4) << 2) |
                              ((L[j + l + 64] >> 4) << 4) | ((L[j + l + 96] >> 4) << 6));
    }
  }
}

}  // namespace dmem_gguf
