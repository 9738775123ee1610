// Scalar reference quantize / dequantize, bit-exact with GGML's ggml-quants.c
// (quantize_row_*_ref and dequantize_row_*, llama.cpp c392e50, Feb 2025).
//
// Bit-exactness depends on doing the float arithmetic in the same order as
// GGML, one rounding per operation: this file must not be compiled with FMA
// contraction (-ffp-contract=fast) or -ffast-math. The default C++20 ISO mode
// (CMAKE_CXX_EXTENSIONS OFF) keeps contraction off. Expressions below keep
// GGML's evaluation order on purpose, e.g. (w * l) * l, never w * (l * l).
#include "hanul/tensor/quantize.h"

#include <fmt/core.h>

#include <algorithm>
#include <cfloat>
#include <climits>
#include <cmath>
#include <cstring>
#include <string>

#include "hanul/tensor/half.h"
#include "hanul/tensor/quant_blocks.h"

namespace hanul {
namespace {

// ---------------------------------------------------------------------------
// Dequantization: one function per block type, y gets nb * block elements.

void dequant_q4_0(const BlockQ4_0* x, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, y += kQK4_0) {
    const float d = fp16_to_f32(x[i].d);
    for (int j = 0; j < kQK4_0 / 2; ++j) {
      y[j] = static_cast<float>((x[i].qs[j] & 0x0f) - 8) * d;
      y[j + kQK4_0 / 2] = static_cast<float>((x[i].qs[j] >> 4) - 8) * d;
    }
  }
}

void dequant_q4_1(const BlockQ4_1* x, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, y += kQK4_1) {
    const float d = fp16_to_f32(x[i].d);
    const float m = fp16_to_f32(x[i].m);
    for (int j = 0; j < kQK4_1 / 2; ++j) {
      y[j] = static_cast<float>(x[i].qs[j] & 0x0f) * d + m;
      y[j + kQK4_1 / 2] = static_cast<float>(x[i].qs[j] >> 4) * d + m;
    }
  }
}

// Q5: bit j of the little-endian 32-bit qh is the 5th bit of element j.
uint32_t load_qh(const uint8_t* qh) {
  return uint32_t{qh[0]} | uint32_t{qh[1]} << 8 | uint32_t{qh[2]} << 16 | uint32_t{qh[3]} << 24;
}
void store_qh(uint8_t* out, uint32_t qh) {
  for (int b = 0; b < 4; ++b) out[b] = static_cast<uint8_t>(qh >> (8 * b));
}

void dequant_q5_0(const BlockQ5_0* x, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, y += kQK5_0) {
    const float d = fp16_to_f32(x[i].d);
    const uint32_t qh = load_qh(x[i].qh);
    for (int j = 0; j < kQK5_0 / 2; ++j) {
      const int lo = (x[i].qs[j] & 0x0f) | static_cast<int>((qh >> j) & 1) << 4;
      const int hi = (x[i].qs[j] >> 4) | static_cast<int>((qh >> (j + 16)) & 1) << 4;
      y[j] = static_cast<float>(lo - 16) * d;
      y[j + kQK5_0 / 2] = static_cast<float>(hi - 16) * d;
    }
  }
}

void dequant_q5_1(const BlockQ5_1* x, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, y += kQK5_1) {
    const float d = fp16_to_f32(x[i].d);
    const float m = fp16_to_f32(x[i].m);
    const uint32_t qh = load_qh(x[i].qh);
    for (int j = 0; j < kQK5_1 / 2; ++j) {
      const int lo = (x[i].qs[j] & 0x0f) | static_cast<int>((qh >> j) & 1) << 4;
      const int hi = (x[i].qs[j] >> 4) | static_cast<int>((qh >> (j + 16)) & 1) << 4;
      y[j] = static_cast<float>(lo) * d + m;
      y[j + kQK5_1 / 2] = static_cast<float>(hi) * d + m;
    }
  }
}

void dequant_q8_0(const BlockQ8_0* x, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, y += kQK8_0) {
    const float d = fp16_to_f32(x[i].d);
    for (int j = 0; j < kQK8_0; ++j) y[j] = static_cast<float>(x[i].qs[j]) * d;
  }
}

// GGML has no dequantize_row_q8_1 (Q8_1 only feeds dot products); the value
// of element j is qs[j] * d exactly as for Q8_0, s is a cached sum.
void dequant_q8_1(const BlockQ8_1* x, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, y += kQK8_1) {
    const float d = fp16_to_f32(x[i].d);
    for (int j = 0; j < kQK8_1; ++j) y[j] = static_cast<float>(x[i].qs[j]) * d;
  }
}

// Q2_K / Q3_K pack 2-bit values as: byte l of a 32-byte group holds elements
// l, l+32, l+64, l+96 of its 128-element half in bit pairs 0-1, 2-3, 4-5, 6-7.
// Each 16 elements have their own scale (and for Q2_K a min).
void dequant_q2_k(const BlockQ2_K* x, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i) {
    const float d = fp16_to_f32(x[i].d);
    const float dmin = fp16_to_f32(x[i].dmin);
    for (int e = 0; e < kQK_K; ++e) {
      const int half = e / 128, pair = (e % 128) / 32, l = e % 32;
      const int q = (x[i].qs[half * 32 + l] >> (2 * pair)) & 3;
      const uint8_t sc = x[i].scales[e / 16];
      const float dl = d * static_cast<float>(sc & 0x0f);
      const float ml = dmin * static_cast<float>(sc >> 4);
      *y++ = dl * static_cast<float>(q) - ml;
    }
  }
}

// Q3_K: sixteen 6-bit scales (stored +32) packed in 12 bytes: the low 4 bits
// of scale j are in byte j%8 (low nibble for j<8, high nibble for j>=8), the
// top 2 bits in byte 8 + j%4 at bit 2*(j/4).
int q3_k_scale(const uint8_t* s, int j) {
  const int lo = (j < 8 ? s[j] : s[j - 8] >> 4) & 0x0f;
  const int hi = (s[8 + j % 4] >> (2 * (j / 4))) & 3;
  return (lo | hi << 4) - 32;
}

void dequant_q3_k(const BlockQ3_K* x, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i) {
    const float d_all = fp16_to_f32(x[i].d);
    for (int e = 0; e < kQK_K; ++e) {
      const int half = e / 128, pair = (e % 128) / 32, l = e % 32;
      const int low = (x[i].qs[half * 32 + l] >> (2 * pair)) & 3;
      // hmask bit b of byte l (0..31) is the high bit of element 32*b + l; a
      // clear bit means "subtract 4".
      const bool high = (x[i].hmask[l] >> (e / 32)) & 1;
      const float dl = d_all * static_cast<float>(q3_k_scale(x[i].scales, e / 16));
      *y++ = dl * static_cast<float>(low - (high ? 0 : 4));
    }
  }
}

// Q4_K / Q5_K: eight 6-bit scales and eight 6-bit mins in 12 bytes (GGML's
// get_scale_min_k4): j<4 in the low 6 bits of bytes j and j+4; j>=4 as a
// nibble of byte j+4 plus the top 2 bits of bytes j-4 and j.
void k4_scale_min(int j, const uint8_t* q, uint8_t* sc, uint8_t* m) {
  if (j < 4) {
    *sc = q[j] & 63;
    *m = q[j + 4] & 63;
  } else {
    *sc = static_cast<uint8_t>((q[j + 4] & 0x0f) | ((q[j - 4] >> 6) << 4));
    *m = static_cast<uint8_t>((q[j + 4] >> 4) | ((q[j] >> 6) << 4));
  }
}

// Elements 64k..64k+31 are the low nibbles of qs[32k..32k+31], the next 32
// the high nibbles; sub-block j (32 elements) has scale/min j.
void dequant_q4_k(const BlockQ4_K* x, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i) {
    const float d = fp16_to_f32(x[i].d);
    const float dmin = fp16_to_f32(x[i].dmin);
    for (int j = 0; j < kQK_K / 32; ++j) {
      uint8_t sc, m;
      k4_scale_min(j, x[i].scales, &sc, &m);
      const float dl = d * static_cast<float>(sc);
      const float ml = dmin * static_cast<float>(m);
      const uint8_t* q = x[i].qs + 32 * (j / 2);
      const int shift = 4 * (j % 2);
      for (int l = 0; l < 32; ++l) *y++ = dl * static_cast<float>((q[l] >> shift) & 0x0f) - ml;
    }
  }
}

// Q5_K: as Q4_K, plus bit j of qh[l] is the 5th bit of element 32*j + l.
void dequant_q5_k(const BlockQ5_K* x, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i) {
    const float d = fp16_to_f32(x[i].d);
    const float dmin = fp16_to_f32(x[i].dmin);
    for (int j = 0; j < kQK_K / 32; ++j) {
      uint8_t sc, m;
      k4_scale_min(j, x[i].scales, &sc, &m);
      const float dl = d * static_cast<float>(sc);
      const float ml = dmin * static_cast<float>(m);
      const uint8_t* q = x[i].qs + 32 * (j / 2);
      const int shift = 4 * (j % 2);
      for (int l = 0; l < 32; ++l) {
        const int v = ((q[l] >> shift) & 0x0f) + (((x[i].qh[l] >> j) & 1) ? 16 : 0);
        *y++ = dl * static_cast<float>(v) - ml;
      }
    }
  }
}

// Q6_K: each 128-element half uses 64 bytes of ql and 32 of qh. For l < 32:
// element l    = ql[l] low nibble,    qh[l] bits 0-1
//         l+32 = ql[l+32] low nibble, qh[l] bits 2-3
//         l+64 = ql[l] high nibble,   qh[l] bits 4-5
//         l+96 = ql[l+32] high nibble, qh[l] bits 6-7; stored +32.
// Value = (d * scale) * q, in that order as GGML.
void dequant_q6_k(const BlockQ6_K* x, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i) {
    const float d = fp16_to_f32(x[i].d);
    for (int half = 0; half < 2; ++half) {
      const uint8_t* ql = x[i].ql + 64 * half;
      const uint8_t* qh = x[i].qh + 32 * half;
      const int8_t* sc = x[i].scales + 8 * half;
      for (int part = 0; part < 4; ++part) {
        for (int l = 0; l < 32; ++l) {
          const int low = (ql[l + 32 * (part & 1)] >> (4 * (part >> 1))) & 0x0f;
          const int q = (low | ((qh[l] >> (2 * part)) & 3) << 4) - 32;
          const float dl = d * static_cast<float>(sc[2 * part + l / 16]);
          y[128 * half + 32 * part + l] = dl * static_cast<float>(q);
        }
      }
    }
    y += kQK_K;
  }
}

void dequant_q8_k(const BlockQ8_K* x, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i)
    for (int j = 0; j < kQK_K; ++j) *y++ = x[i].d * static_cast<float>(x[i].qs[j]);
}

// ---------------------------------------------------------------------------
// Quantization, following GGML's quantize_row_*_ref (no importance matrix).

// C's float -> integer conversion as x86 does it (cvttss2si), without the UB
// of casting NaN or out-of-range floats: GGML casts directly, and on finite
// inputs the values here are always in range.
int trunc_to_int(float v) {
  if (!(v > -2147483648.0f && v < 2147483648.0f)) return INT32_MIN;
  return static_cast<int>(v);
}

// GGML's nearest_int: adding 1.5 * 2^23 makes the float unit one, so the FPU
// rounds to nearest even; the integer is then read from the mantissa bits.
// Exact for |f| < 2^22, which every caller guarantees by construction.
int nearest_int(float f) {
  const float v = f + 12582912.0f;
  int32_t i;
  std::memcpy(&i, &v, 4);
  return (i & 0x007fffff) - 0x00400000;
}

// Index of the element of largest magnitude, the first one on ties (GGML
// compares with a strict <).
int argmax_abs(const float* x, int n) {
  int best = 0;
  float amax = 0.0f;
  for (int i = 0; i < n; ++i) {
    if (amax < std::fabs(x[i])) {
      amax = std::fabs(x[i]);
      best = i;
    }
  }
  return best;
}

void min_max(const float* x, int n, float* mn, float* mx) {
  *mn = FLT_MAX;
  *mx = -FLT_MAX;
  for (int i = 0; i < n; ++i) {
    if (x[i] < *mn) *mn = x[i];
    if (x[i] > *mx) *mx = x[i];
  }
}

// Q4_0 / Q5_0: symmetric, d = max / -2^(bits-1) where max is the signed value
// of largest magnitude, so that value maps exactly to code 0.
void quant_q4_0(const float* x, BlockQ4_0* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, x += kQK4_0) {
    const float max = x[argmax_abs(x, kQK4_0)];
    const float d = max / -8;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    y[i].d = f32_to_fp16(d);
    for (int j = 0; j < kQK4_0 / 2; ++j) {
      const int lo = std::min(15, trunc_to_int(x[j] * id + 8.5f));
      const int hi = std::min(15, trunc_to_int(x[j + kQK4_0 / 2] * id + 8.5f));
      y[i].qs[j] = static_cast<uint8_t>(lo | hi << 4);
    }
  }
}

void quant_q4_1(const float* x, BlockQ4_1* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, x += kQK4_1) {
    float mn, mx;
    min_max(x, kQK4_1, &mn, &mx);
    const float d = (mx - mn) / 15;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    y[i].d = f32_to_fp16(d);
    y[i].m = f32_to_fp16(mn);
    for (int j = 0; j < kQK4_1 / 2; ++j) {
      const int lo = std::min(15, trunc_to_int((x[j] - mn) * id + 0.5f));
      const int hi = std::min(15, trunc_to_int((x[j + kQK4_1 / 2] - mn) * id + 0.5f));
      y[i].qs[j] = static_cast<uint8_t>(lo | hi << 4);
    }
  }
}

void quant_q5_0(const float* x, BlockQ5_0* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, x += kQK5_0) {
    const float max = x[argmax_abs(x, kQK5_0)];
    const float d = max / -16;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    y[i].d = f32_to_fp16(d);
    uint32_t qh = 0;
    for (int j = 0; j < kQK5_0 / 2; ++j) {
      // GGML goes through int8_t here, so keep the low 8 bits before the min.
      const int lo = std::min(31, int{static_cast<int8_t>(trunc_to_int(x[j] * id + 16.5f))});
      const int hi =
          std::min(31, int{static_cast<int8_t>(trunc_to_int(x[j + kQK5_0 / 2] * id + 16.5f))});
      y[i].qs[j] = static_cast<uint8_t>((lo & 0x0f) | (hi & 0x0f) << 4);
      qh |= static_cast<uint32_t>((lo >> 4) & 1) << j;
      qh |= static_cast<uint32_t>((hi >> 4) & 1) << (j + kQK5_0 / 2);
    }
    store_qh(y[i].qh, qh);
  }
}

void quant_q5_1(const float* x, BlockQ5_1* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, x += kQK5_1) {
    float mn, mx;
    min_max(x, kQK5_1, &mn, &mx);
    const float d = (mx - mn) / 31;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    y[i].d = f32_to_fp16(d);
    y[i].m = f32_to_fp16(mn);
    uint32_t qh = 0;
    for (int j = 0; j < kQK5_1 / 2; ++j) {
      // No clamp in GGML: (x - min) * id + 0.5 < 32 for finite input.
      const int lo = static_cast<uint8_t>(trunc_to_int((x[j] - mn) * id + 0.5f));
      const int hi = static_cast<uint8_t>(trunc_to_int((x[j + kQK5_1 / 2] - mn) * id + 0.5f));
      y[i].qs[j] = static_cast<uint8_t>((lo & 0x0f) | (hi & 0x0f) << 4);
      qh |= static_cast<uint32_t>((lo >> 4) & 1) << j;
      qh |= static_cast<uint32_t>((hi >> 4) & 1) << (j + kQK5_1 / 2);
    }
    store_qh(y[i].qh, qh);
  }
}

// Q8_0 / Q8_1 round half away from zero (C roundf), unlike the K-quants.
float amax_of(const float* x, int n) {
  float amax = 0.0f;
  for (int j = 0; j < n; ++j) amax = std::max(amax, std::fabs(x[j]));
  return amax;
}

void quant_q8_0(const float* x, BlockQ8_0* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, x += kQK8_0) {
    const float d = amax_of(x, kQK8_0) / 127;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    y[i].d = f32_to_fp16(d);
    for (int j = 0; j < kQK8_0; ++j)
      y[i].qs[j] = static_cast<int8_t>(trunc_to_int(std::round(x[j] * id)));
  }
}

void quant_q8_1(const float* x, BlockQ8_1* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, x += kQK8_1) {
    const float d = amax_of(x, kQK8_1) / 127;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    y[i].d = f32_to_fp16(d);
    int sum = 0;
    for (int j = 0; j < kQK8_1; ++j) {
      y[i].qs[j] = static_cast<int8_t>(trunc_to_int(std::round(x[j] * id)));
      sum += y[i].qs[j];
    }
    y[i].s = f32_to_fp16(static_cast<float>(sum) * d);
  }
}

// --- K-quant scale searches (ggml-quants.c) --------------------------------

constexpr float kGroupMaxEps = 1e-15f;  // GGML's GROUP_MAX_EPS: an all-zero group

// make_qx_quants with rmse_type 1 and no importance weights, the only form
// the reference Q6_K quantizer uses: symmetric codes L in [0, 2*nmax), the
// scale chosen among 19 trial inverse scales around -nmax/max by weighted
// least squares with weights x^2. Returns the scale; L gets codes + nmax.
float make_qx_quants(int n, int nmax, const float* x, int8_t* L) {
  const float max = x[argmax_abs(x, n)];
  if (std::fabs(max) < kGroupMaxEps) {
    std::fill(L, L + n, int8_t{0});
    return 0.0f;
  }
  auto clamp_code = [nmax](int l) { return std::max(-nmax, std::min(nmax - 1, l)); };
  float iscale = static_cast<float>(-nmax) / max;
  float sumlx = 0.0f, suml2 = 0.0f;
  for (int i = 0; i < n; ++i) {
    const int l = clamp_code(nearest_int(iscale * x[i]));
    L[i] = static_cast<int8_t>(l + nmax);
    const float w = x[i] * x[i];
    const float fl = static_cast<float>(l);
    sumlx += w * x[i] * fl;
    suml2 += w * fl * fl;
  }
  float scale = suml2 != 0.0f ? sumlx / suml2 : 0.0f;
  float best = scale * sumlx;
  for (int is = -9; is <= 9; ++is) {
    if (is == 0) continue;
    iscale = -(static_cast<float>(nmax) + 0.1f * static_cast<float>(is)) / max;
    sumlx = suml2 = 0.0f;
    for (int i = 0; i < n; ++i) {
      const float fl = static_cast<float>(clamp_code(nearest_int(iscale * x[i])));
      const float w = x[i] * x[i];
      sumlx += w * x[i] * fl;
      suml2 += w * fl * fl;
    }
    if (suml2 > 0.0f && sumlx * sumlx > best * suml2) {
      for (int i = 0; i < n; ++i)
        L[i] = static_cast<int8_t>(nmax + clamp_code(nearest_int(iscale * x[i])));
      scale = sumlx / suml2;
      best = scale * sumlx;
    }
  }
  return scale;
}

// make_q3_quants with do_rmse (the reference Q3_K form): start from the
// max-magnitude scale, then up to 5 passes of coordinate descent that move
// one code at a time when that improves the weighted (x^2) least-squares fit.
// L gets codes + nmax (or all 0 for an all-zero group).
float make_q3_quants(int n, int nmax, const float* x, int8_t* L) {
  const float max = x[argmax_abs(x, n)];
  if (std::fabs(max) < kGroupMaxEps) {
    std::fill(L, L + n, int8_t{0});
    return 0.0f;
  }
  auto clamp_code = [nmax](int l) { return std::max(-nmax, std::min(nmax - 1, l)); };
  const float iscale = static_cast<float>(-nmax) / max;
  float sumlx = 0.0f, suml2 = 0.0f;
  for (int i = 0; i < n; ++i) {
    const int l = clamp_code(nearest_int(iscale * x[i]));
    L[i] = static_cast<int8_t>(l);
    const float w = x[i] * x[i];
    sumlx += w * x[i] * static_cast<float>(l);
    suml2 += w * static_cast<float>(l) * static_cast<float>(l);
  }
  for (int itry = 0; itry < 5; ++itry) {
    int n_changed = 0;
    for (int i = 0; i < n; ++i) {
      const float w = x[i] * x[i];
      const float li = static_cast<float>(L[i]);
      float slx = sumlx - w * x[i] * li;
      if (slx > 0.0f) {
        float sl2 = suml2 - w * li * li;
        const int new_l = clamp_code(nearest_int(x[i] * sl2 / slx));
        if (new_l != L[i]) {
          const float fl = static_cast<float>(new_l);
          slx += w * x[i] * fl;
          sl2 += w * fl * fl;
          if (sl2 > 0.0f && slx * slx * suml2 > sumlx * sumlx * sl2) {
            L[i] = static_cast<int8_t>(new_l);
            sumlx = slx;
            suml2 = sl2;
            ++n_changed;
          }
        }
      }
    }
    if (n_changed == 0) break;
  }
  for (int i = 0; i < n; ++i) L[i] = static_cast<int8_t>(L[i] + nmax);
  return sumlx / suml2;
}

// make_qkx2_quants: asymmetric codes L in [0, nmax] for x ~ scale * L - the_min.
// Tries nstep+1 inverse scales (rmin + rdelta*is + nmax) / (max - min); for
// each, solves the weighted least-squares scale and min in closed form and
// keeps the one with the smallest weighted error (|.| if use_mad, else ^2).
float make_qkx2_quants(int n, int nmax, const float* x, const float* weights, uint8_t* L,
                       float* the_min, uint8_t* Laux, float rmin, float rdelta, int nstep,
                       bool use_mad) {
  float min = x[0], max = x[0];
  float sum_w = weights[0];
  float sum_x = sum_w * x[0];
  for (int i = 1; i < n; ++i) {
    if (x[i] < min) min = x[i];
    if (x[i] > max) max = x[i];
    sum_w += weights[i];
    sum_x += weights[i] * x[i];
  }
  if (min > 0.0f) min = 0.0f;
  if (max == min) {
    std::fill(L, L + n, uint8_t{0});
    *the_min = -min;
    return 0.0f;
  }
  auto error_of = [use_mad](float diff) { return use_mad ? std::fabs(diff) : diff * diff; };
  float iscale = static_cast<float>(nmax) / (max - min);
  float scale = 1.0f / iscale;
  float best_mad = 0.0f;
  for (int i = 0; i < n; ++i) {
    const int l = nearest_int(iscale * (x[i] - min));
    L[i] = static_cast<uint8_t>(std::max(0, std::min(nmax, l)));
    best_mad += weights[i] * error_of(scale * static_cast<float>(L[i]) + min - x[i]);
  }
  if (nstep < 1) {
    *the_min = -min;
    return scale;
  }
  for (int is = 0; is <= nstep; ++is) {
    iscale = (rmin + rdelta * static_cast<float>(is) + static_cast<float>(nmax)) / (max - min);
    float sum_l = 0.0f, sum_l2 = 0.0f, sum_xl = 0.0f;
    for (int i = 0; i < n; ++i) {
      const int l = std::max(0, std::min(nmax, nearest_int(iscale * (x[i] - min))));
      Laux[i] = static_cast<uint8_t>(l);
      const float w = weights[i];
      const float fl = static_cast<float>(l);
      sum_l += w * fl;
      sum_l2 += w * fl * fl;
      sum_xl += w * fl * x[i];
    }
    const float D = sum_w * sum_l2 - sum_l * sum_l;
    if (D > 0.0f) {
      float this_scale = (sum_w * sum_xl - sum_x * sum_l) / D;
      float this_min = (sum_l2 * sum_x - sum_l * sum_xl) / D;
      if (this_min > 0.0f) {
        this_min = 0.0f;
        this_scale = sum_xl / sum_l2;
      }
      float mad = 0.0f;
      for (int i = 0; i < n; ++i)
        mad += weights[i] * error_of(this_scale * static_cast<float>(Laux[i]) + this_min - x[i]);
      if (mad < best_mad) {
        std::copy(Laux, Laux + n, L);
        best_mad = mad;
        scale = this_scale;
        min = this_min;
      }
    }
  }
  *the_min = -min;
  return scale;
}

// Q2_K / Q3_K: 2-bit codes packed as dequant_q2_k reads them.
void pack_2bit(const uint8_t* L, uint8_t* qs) {
  for (int half = 0; half < 2; ++half) {
    const uint8_t* l = L + 128 * half;
    for (int j = 0; j < 32; ++j)
      qs[32 * half + j] =
          static_cast<uint8_t>(l[j] | l[j + 32] << 2 | l[j + 64] << 4 | l[j + 96] << 6);
  }
}

void quant_q2_k(const float* x, BlockQ2_K* y, int64_t nb) {
  constexpr float kQ4Scale = 15.0f;
  uint8_t L[kQK_K], Laux[16];
  float weights[16], mins[kQK_K / 16], scales[kQK_K / 16];
  for (int64_t i = 0; i < nb; ++i, x += kQK_K) {
    float max_scale = 0.0f, max_min = 0.0f;
    for (int j = 0; j < kQK_K / 16; ++j) {
      for (int l = 0; l < 16; ++l) weights[l] = std::fabs(x[16 * j + l]);
      scales[j] = make_qkx2_quants(16, 3, x + 16 * j, weights, L + 16 * j, &mins[j], Laux, -0.5f,
                                   0.1f, 15, true);
      if (scales[j] > max_scale) max_scale = scales[j];
      if (mins[j] > max_min) max_min = mins[j];
    }
    // 4-bit scale (low nibble) and 4-bit min (high nibble) per 16 elements.
    if (max_scale > 0.0f) {
      const float iscale = kQ4Scale / max_scale;
      for (int j = 0; j < kQK_K / 16; ++j)
        y[i].scales[j] = static_cast<uint8_t>(nearest_int(iscale * scales[j]));
      y[i].d = f32_to_fp16(max_scale / kQ4Scale);
    } else {
      std::fill(y[i].scales, y[i].scales + kQK_K / 16, uint8_t{0});
      y[i].d = f32_to_fp16(0.0f);
    }
    if (max_min > 0.0f) {
      const float iscale = kQ4Scale / max_min;
      for (int j = 0; j < kQK_K / 16; ++j)
        y[i].scales[j] |= static_cast<uint8_t>(nearest_int(iscale * mins[j]) << 4);
      y[i].dmin = f32_to_fp16(max_min / kQ4Scale);
    } else {
      y[i].dmin = f32_to_fp16(0.0f);
    }
    // Re-pick the codes for the scales as actually stored (fp16 d, 4-bit sc).
    for (int j = 0; j < kQK_K / 16; ++j) {
      const float d = fp16_to_f32(y[i].d) * static_cast<float>(y[i].scales[j] & 0x0f);
      if (d == 0.0f) continue;
      const float dm = fp16_to_f32(y[i].dmin) * static_cast<float>(y[i].scales[j] >> 4);
      for (int ii = 0; ii < 16; ++ii) {
        const int l = nearest_int((x[16 * j + ii] + dm) / d);
        L[16 * j + ii] = static_cast<uint8_t>(std::max(0, std::min(3, l)));
      }
    }
    pack_2bit(L, y[i].qs);
  }
}

void quant_q3_k(const float* x, BlockQ3_K* y, int64_t nb) {
  int8_t L[kQK_K];
  float scales[kQK_K / 16];
  for (int64_t i = 0; i < nb; ++i, x += kQK_K) {
    float max_scale = 0.0f, amax = 0.0f;
    for (int j = 0; j < kQK_K / 16; ++j) {
      scales[j] = make_q3_quants(16, 4, x + 16 * j, L + 16 * j);
      if (std::fabs(scales[j]) > amax) {
        amax = std::fabs(scales[j]);
        max_scale = scales[j];
      }
    }
    std::memset(y[i].scales, 0, sizeof(y[i].scales));
    if (max_scale != 0.0f) {
      const float iscale = -32.0f / max_scale;
      for (int j = 0; j < kQK_K / 16; ++j) {
        // GGML stores nearest_int into an int8_t before clamping to [-32, 31].
        int l = static_cast<int8_t>(nearest_int(iscale * scales[j]));
        l = std::max(-32, std::min(31, l)) + 32;
        if (j < 8)
          y[i].scales[j] = static_cast<uint8_t>(l & 0x0f);
        else
          y[i].scales[j - 8] |= static_cast<uint8_t>((l & 0x0f) << 4);
        y[i].scales[8 + j % 4] |= static_cast<uint8_t>((l >> 4) << (2 * (j / 4)));
      }
      y[i].d = f32_to_fp16(1.0f / iscale);
    } else {
      y[i].d = f32_to_fp16(0.0f);
    }
    for (int j = 0; j < kQK_K / 16; ++j) {
      const float d = fp16_to_f32(y[i].d) * static_cast<float>(q3_k_scale(y[i].scales, j));
      if (d == 0.0f) continue;
      for (int ii = 0; ii < 16; ++ii) {
        const int l = nearest_int(x[16 * j + ii] / d);
        L[16 * j + ii] = static_cast<int8_t>(std::max(-4, std::min(3, l)) + 4);
      }
    }
    // Codes 0..7: bit 2 goes to hmask (bit j/32 of byte j%32), bits 0-1 to qs.
    std::memset(y[i].hmask, 0, sizeof(y[i].hmask));
    uint8_t low[kQK_K];
    for (int j = 0; j < kQK_K; ++j) {
      int l = L[j];
      if (l > 3) {
        y[i].hmask[j % 32] |= static_cast<uint8_t>(1u << (j / 32));
        l -= 4;
      }
      low[j] = static_cast<uint8_t>(l);
    }
    pack_2bit(low, y[i].qs);
  }
}

// Q4_K / Q5_K share the 6-bit scale/min packing (inverse of k4_scale_min).
void pack_k4_scales(const float* scales, const float* mins, float max_scale, float max_min,
                    uint8_t* out) {
  const float inv_scale = max_scale > 0.0f ? 63.0f / max_scale : 0.0f;
  const float inv_min = max_min > 0.0f ? 63.0f / max_min : 0.0f;
  for (int j = 0; j < kQK_K / 32; ++j) {
    // GGML assigns nearest_int to a uint8_t (wrapping) before the min with 63.
    const uint8_t ls =
        std::min<uint8_t>(63, static_cast<uint8_t>(nearest_int(inv_scale * scales[j])));
    const uint8_t lm = std::min<uint8_t>(63, static_cast<uint8_t>(nearest_int(inv_min * mins[j])));
    if (j < 4) {
      out[j] = ls;
      out[j + 4] = lm;
    } else {
      out[j + 4] = static_cast<uint8_t>((ls & 0x0f) | (lm & 0x0f) << 4);
      out[j - 4] |= static_cast<uint8_t>((ls >> 4) << 6);
      out[j] |= static_cast<uint8_t>((lm >> 4) << 6);
    }
  }
}

// Shared by Q4_K (nmax 15) and Q5_K (nmax 31): per 32 elements a scale and a
// min from make_qkx2_quants with weights av_x + |x|, then the codes re-picked
// against the stored 6-bit scales. L gets 256 codes in [0, nmax].
void quant_k_asym(const float* x, int nmax, float rmin, int nstep, uint16_t* d_out,
                  uint16_t* dmin_out, uint8_t* scales_out, uint8_t* L) {
  uint8_t Laux[32];
  float weights[32], mins[kQK_K / 32], scales[kQK_K / 32];
  float max_scale = 0.0f, max_min = 0.0f;
  for (int j = 0; j < kQK_K / 32; ++j) {
    const float* xj = x + 32 * j;
    float sum_x2 = 0.0f;
    for (int l = 0; l < 32; ++l) sum_x2 += xj[l] * xj[l];
    const float av_x = std::sqrt(sum_x2 / 32);
    for (int l = 0; l < 32; ++l) weights[l] = av_x + std::fabs(xj[l]);
    scales[j] = make_qkx2_quants(32, nmax, xj, weights, L + 32 * j, &mins[j], Laux, rmin, 0.1f,
                                 nstep, false);
    if (scales[j] > max_scale) max_scale = scales[j];
    if (mins[j] > max_min) max_min = mins[j];
  }
  pack_k4_scales(scales, mins, max_scale, max_min, scales_out);
  *d_out = f32_to_fp16(max_scale / 63.0f);
  *dmin_out = f32_to_fp16(max_min / 63.0f);
  for (int j = 0; j < kQK_K / 32; ++j) {
    uint8_t sc, m;
    k4_scale_min(j, scales_out, &sc, &m);
    const float d = fp16_to_f32(*d_out) * static_cast<float>(sc);
    if (d == 0.0f) continue;
    const float dm = fp16_to_f32(*dmin_out) * static_cast<float>(m);
    for (int ii = 0; ii < 32; ++ii) {
      const int l = nearest_int((x[32 * j + ii] + dm) / d);
      L[32 * j + ii] = static_cast<uint8_t>(std::max(0, std::min(nmax, l)));
    }
  }
}

void quant_q4_k(const float* x, BlockQ4_K* y, int64_t nb) {
  uint8_t L[kQK_K];
  for (int64_t i = 0; i < nb; ++i, x += kQK_K) {
    quant_k_asym(x, 15, -1.0f, 20, &y[i].d, &y[i].dmin, y[i].scales, L);
    for (int k = 0; k < kQK_K / 64; ++k)
      for (int l = 0; l < 32; ++l)
        y[i].qs[32 * k + l] = static_cast<uint8_t>(L[64 * k + l] | L[64 * k + 32 + l] << 4);
  }
}

void quant_q5_k(const float* x, BlockQ5_K* y, int64_t nb) {
  uint8_t L[kQK_K];
  for (int64_t i = 0; i < nb; ++i, x += kQK_K) {
    quant_k_asym(x, 31, -0.5f, 15, &y[i].d, &y[i].dmin, y[i].scales, L);
    std::memset(y[i].qh, 0, sizeof(y[i].qh));
    for (int j = 0; j < kQK_K / 32; ++j) {  // sub-block j: nibble j%2 of qs[32*(j/2)..], qh bit j
      for (int l = 0; l < 32; ++l) {
        const int v = L[32 * j + l];
        if (v > 15) y[i].qh[l] |= static_cast<uint8_t>(1u << j);
        uint8_t& q = y[i].qs[32 * (j / 2) + l];
        if (j % 2 == 0)
          q = static_cast<uint8_t>(v & 0x0f);
        else
          q |= static_cast<uint8_t>((v & 0x0f) << 4);
      }
    }
  }
}

void quant_q6_k(const float* x, BlockQ6_K* y, int64_t nb) {
  int8_t L[kQK_K];
  float scales[kQK_K / 16];
  for (int64_t i = 0; i < nb; ++i, x += kQK_K) {
    float max_scale = 0.0f, max_abs_scale = 0.0f;
    for (int ib = 0; ib < kQK_K / 16; ++ib) {
      scales[ib] = make_qx_quants(16, 32, x + 16 * ib, L + 16 * ib);
      if (std::fabs(scales[ib]) > max_abs_scale) {
        max_abs_scale = std::fabs(scales[ib]);
        max_scale = scales[ib];
      }
    }
    if (max_abs_scale < kGroupMaxEps) {  // GGML writes an all-zero block
      std::memset(&y[i], 0, sizeof(BlockQ6_K));
      continue;
    }
    const float iscale = -128.0f / max_scale;
    y[i].d = f32_to_fp16(1.0f / iscale);
    for (int ib = 0; ib < kQK_K / 16; ++ib)
      y[i].scales[ib] = static_cast<int8_t>(std::min(127, nearest_int(iscale * scales[ib])));
    for (int j = 0; j < kQK_K / 16; ++j) {
      const float d = fp16_to_f32(y[i].d) * static_cast<float>(y[i].scales[j]);
      if (d == 0.0f) continue;
      for (int ii = 0; ii < 16; ++ii) {
        const int l = nearest_int(x[16 * j + ii] / d);
        L[16 * j + ii] = static_cast<int8_t>(std::max(-32, std::min(31, l)) + 32);
      }
    }
    // Inverse of dequant_q6_k's layout.
    for (int half = 0; half < 2; ++half) {
      uint8_t* ql = y[i].ql + 64 * half;
      uint8_t* qh = y[i].qh + 32 * half;
      const int8_t* lh = L + 128 * half;
      for (int l = 0; l < 32; ++l) {
        ql[l] = static_cast<uint8_t>((lh[l] & 0x0f) | (lh[l + 64] & 0x0f) << 4);
        ql[l + 32] = static_cast<uint8_t>((lh[l + 32] & 0x0f) | (lh[l + 96] & 0x0f) << 4);
        qh[l] = static_cast<uint8_t>((lh[l] >> 4) | (lh[l + 32] >> 4) << 2 |
                                     (lh[l + 64] >> 4) << 4 | (lh[l + 96] >> 4) << 6);
      }
    }
  }
}

// Q8_K: d = max / -127 in float32 (not fp16), round-to-even codes, and the
// sums of each 16 codes for the K-quant dot products.
void quant_q8_k(const float* x, BlockQ8_K* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, x += kQK_K) {
    const float max = x[argmax_abs(x, kQK_K)];
    if (max == 0.0f) {
      // GGML leaves bsums unset here; zero them so the block is deterministic.
      std::memset(&y[i], 0, sizeof(BlockQ8_K));
      continue;
    }
    const float iscale = -127.0f / max;
    for (int j = 0; j < kQK_K; ++j)
      y[i].qs[j] = static_cast<int8_t>(std::min(127, nearest_int(iscale * x[j])));
    for (int j = 0; j < kQK_K / 16; ++j) {
      int sum = 0;
      for (int ii = 0; ii < 16; ++ii) sum += y[i].qs[16 * j + ii];
      y[i].bsums[j] = static_cast<int16_t>(sum);
    }
    y[i].d = 1.0f / iscale;
  }
}

std::string type_label(DType t) {
  return fmt::format("{} (ggml type {})", dtype_name(t), static_cast<uint32_t>(t));
}

// The block size of a type this file handles, after checking n.
Status check_row(const char* what, DType type, int64_t n) {
  auto info = dtype_info(type);
  if (!info) return Error{fmt::format("{}: unknown dtype {}", what, type_label(type))};
  if (n < 0 || n % info->block_size != 0)
    return Error{fmt::format("{}: {} rows need a multiple of {} elements, got {}", what,
                             dtype_name(type), info->block_size, n)};
  return Status::Ok();
}

}  // namespace

Status dequantize_row(DType type, const void* src, float* dst, int64_t n) {
  HANUL_TRY(check_row("dequantize_row", type, n));
  const int64_t nb = n / block_size(type);
  switch (type) {
    case DType::F32:
      if (n > 0) std::memcpy(dst, src, static_cast<size_t>(n) * sizeof(float));
      return Status::Ok();
    case DType::F16: {
      const auto* h = static_cast<const uint16_t*>(src);
      for (int64_t i = 0; i < n; ++i) dst[i] = fp16_to_f32(h[i]);
      return Status::Ok();
    }
    case DType::BF16: {
      const auto* h = static_cast<const uint16_t*>(src);
      for (int64_t i = 0; i < n; ++i) dst[i] = bf16_to_f32(h[i]);
      return Status::Ok();
    }
    case DType::F64: {
      const auto* s = static_cast<const uint8_t*>(src);
      for (int64_t i = 0; i < n; ++i) {
        double v;
        std::memcpy(&v, s + 8 * i, 8);  // F64 data need not be 8-byte aligned in a file
        dst[i] = static_cast<float>(v);
      }
      return Status::Ok();
    }
    case DType::Q4_0:
      dequant_q4_0(static_cast<const BlockQ4_0*>(src), dst, nb);
      return Status::Ok();
    case DType::Q4_1:
      dequant_q4_1(static_cast<const BlockQ4_1*>(src), dst, nb);
      return Status::Ok();
    case DType::Q5_0:
      dequant_q5_0(static_cast<const BlockQ5_0*>(src), dst, nb);
      return Status::Ok();
    case DType::Q5_1:
      dequant_q5_1(static_cast<const BlockQ5_1*>(src), dst, nb);
      return Status::Ok();
    case DType::Q8_0:
      dequant_q8_0(static_cast<const BlockQ8_0*>(src), dst, nb);
      return Status::Ok();
    case DType::Q8_1:
      dequant_q8_1(static_cast<const BlockQ8_1*>(src), dst, nb);
      return Status::Ok();
    case DType::Q2_K:
      dequant_q2_k(static_cast<const BlockQ2_K*>(src), dst, nb);
      return Status::Ok();
    case DType::Q3_K:
      dequant_q3_k(static_cast<const BlockQ3_K*>(src), dst, nb);
      return Status::Ok();
    case DType::Q4_K:
      dequant_q4_k(static_cast<const BlockQ4_K*>(src), dst, nb);
      return Status::Ok();
    case DType::Q5_K:
      dequant_q5_k(static_cast<const BlockQ5_K*>(src), dst, nb);
      return Status::Ok();
    case DType::Q6_K:
      dequant_q6_k(static_cast<const BlockQ6_K*>(src), dst, nb);
      return Status::Ok();
    case DType::Q8_K:
      dequant_q8_k(static_cast<const BlockQ8_K*>(src), dst, nb);
      return Status::Ok();
    default:
      break;
  }
  return Error{
      fmt::format("dequantize_row: dtype {} cannot be converted to float32", type_label(type))};
}

bool can_quantize(DType type) {
  switch (type) {
    case DType::F32:
    case DType::F16:
    case DType::BF16:
    case DType::Q4_0:
    case DType::Q4_1:
    case DType::Q5_0:
    case DType::Q5_1:
    case DType::Q8_0:
    case DType::Q8_1:
    case DType::Q2_K:
    case DType::Q3_K:
    case DType::Q4_K:
    case DType::Q5_K:
    case DType::Q6_K:
    case DType::Q8_K:
      return true;
    default:
      return false;
  }
}

Status quantize_row(DType type, const float* src, void* dst, int64_t n) {
  HANUL_TRY(check_row("quantize_row", type, n));
  const int64_t nb = n / block_size(type);
  switch (type) {
    case DType::F32:
      if (n > 0) std::memcpy(dst, src, static_cast<size_t>(n) * sizeof(float));
      return Status::Ok();
    case DType::F16: {
      auto* h = static_cast<uint16_t*>(dst);
      for (int64_t i = 0; i < n; ++i) h[i] = f32_to_fp16(src[i]);
      return Status::Ok();
    }
    case DType::BF16: {
      auto* h = static_cast<uint16_t*>(dst);
      for (int64_t i = 0; i < n; ++i) h[i] = f32_to_bf16(src[i]);
      return Status::Ok();
    }
    case DType::Q4_0:
      quant_q4_0(src, static_cast<BlockQ4_0*>(dst), nb);
      return Status::Ok();
    case DType::Q4_1:
      quant_q4_1(src, static_cast<BlockQ4_1*>(dst), nb);
      return Status::Ok();
    case DType::Q5_0:
      quant_q5_0(src, static_cast<BlockQ5_0*>(dst), nb);
      return Status::Ok();
    case DType::Q5_1:
      quant_q5_1(src, static_cast<BlockQ5_1*>(dst), nb);
      return Status::Ok();
    case DType::Q8_0:
      quant_q8_0(src, static_cast<BlockQ8_0*>(dst), nb);
      return Status::Ok();
    case DType::Q8_1:
      quant_q8_1(src, static_cast<BlockQ8_1*>(dst), nb);
      return Status::Ok();
    case DType::Q2_K:
      quant_q2_k(src, static_cast<BlockQ2_K*>(dst), nb);
      return Status::Ok();
    case DType::Q3_K:
      quant_q3_k(src, static_cast<BlockQ3_K*>(dst), nb);
      return Status::Ok();
    case DType::Q4_K:
      quant_q4_k(src, static_cast<BlockQ4_K*>(dst), nb);
      return Status::Ok();
    case DType::Q5_K:
      quant_q5_k(src, static_cast<BlockQ5_K*>(dst), nb);
      return Status::Ok();
    case DType::Q6_K:
      quant_q6_k(src, static_cast<BlockQ6_K*>(dst), nb);
      return Status::Ok();
    case DType::Q8_K:
      quant_q8_k(src, static_cast<BlockQ8_K*>(dst), nb);
      return Status::Ok();
    default:
      break;
  }
  return Error{fmt::format("quantize_row: hanul cannot write dtype {}", type_label(type))};
}

}  // namespace hanul
