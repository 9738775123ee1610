// Scalar reference quantize / dequantize, bit-exact with GGML's ggml-quants.c
// (quantize_row_*_ref and dequantize_row_*, llama.cpp c392e50, Feb 2025).
//
// Bit-exactness depends on doing the float arithmetic in the same order as
// GGML, one rounding per operation: this file must not be compiled with FMA
// contraction (-ffp-contract=fast) or -ffast-math. The default C++20 ISO mode
// (CMAKE_CXX_EXTENSIONS OFF) keeps contraction off. Expressions below keep
// GGML's evaluation order on purpose, e.g. (w * l) * l, never w * (l * l).
#include "hanul/tensor/quantize.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>

#include <fmt/core.h>

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
    case DType::Q4_0: dequant_q4_0(static_cast<const BlockQ4_0*>(src), dst, nb); return Status::Ok();
    case DType::Q4_1: dequant_q4_1(static_cast<const BlockQ4_1*>(src), dst, nb); return Status::Ok();
    case DType::Q5_0: dequant_q5_0(static_cast<const BlockQ5_0*>(src), dst, nb); return Status::Ok();
    case DType::Q5_1: dequant_q5_1(static_cast<const BlockQ5_1*>(src), dst, nb); return Status::Ok();
    case DType::Q8_0: dequant_q8_0(static_cast<const BlockQ8_0*>(src), dst, nb); return Status::Ok();
    case DType::Q8_1: dequant_q8_1(static_cast<const BlockQ8_1*>(src), dst, nb); return Status::Ok();
    case DType::Q2_K: dequant_q2_k(static_cast<const BlockQ2_K*>(src), dst, nb); return Status::Ok();
    case DType::Q3_K: dequant_q3_k(static_cast<const BlockQ3_K*>(src), dst, nb); return Status::Ok();
    case DType::Q4_K: dequant_q4_k(static_cast<const BlockQ4_K*>(src), dst, nb); return Status::Ok();
    case DType::Q5_K: dequant_q5_k(static_cast<const BlockQ5_K*>(src), dst, nb); return Status::Ok();
    case DType::Q6_K: dequant_q6_k(static_cast<const BlockQ6_K*>(src), dst, nb); return Status::Ok();
    case DType::Q8_K: dequant_q8_k(static_cast<const BlockQ8_K*>(src), dst, nb); return Status::Ok();
    default:
      break;
  }
  return Error{fmt::format("dequantize_row: dtype {} cannot be converted to float32",
                           type_label(type))};
}

bool can_quantize(DType type) { return false; }

Status quantize_row(DType type, const float* src, void* dst, int64_t n) {
  HANUL_TRY(check_row("quantize_row", type, n));
  return Error{fmt::format("quantize_row: cannot write dtype {}", type_label(type))};
}

}  // namespace hanul
