// The portable table: plain C++ that any CPU runs, and the twin the SIMD tables
// are tested against. Partial sums in 8 lanes let the compiler vectorize where it can.
#include <cmath>

#include "hanul/kernels/cpu/simd.h"
#include "hanul/tensor/half.h"

namespace hanul::cpu::simd {
namespace {

template <class Load>
float dot_lanes(const float* x, int64_t n, Load load) {
  float acc[8] = {};
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    for (int l = 0; l < 8; ++l) acc[l] += x[i + l] * load(i + l);
  float sum = 0.0f;
  for (; i < n; ++i) sum += x[i] * load(i);
  for (int l = 0; l < 8; ++l) sum += acc[l];
  return sum;
}

float dot_f32(const float* x, const float* w, int64_t n) {
  return dot_lanes(x, n, [w](int64_t i) { return w[i]; });
}
float dot_f16(const float* x, const uint16_t* w, int64_t n) {
  return dot_lanes(x, n, [w](int64_t i) { return fp16_to_f32(w[i]); });
}
float dot_bf16(const float* x, const uint16_t* w, int64_t n) {
  return dot_lanes(x, n, [w](int64_t i) { return bf16_to_f32(w[i]); });
}

float dot_q8_0(const BlockQ8_0* x, const BlockQ8_0* w, int64_t nb) {
  float sum = 0.0f;
  for (int64_t b = 0; b < nb; ++b) {
    int32_t isum = 0;
    for (int l = 0; l < kQK8_0; ++l) isum += x[b].qs[l] * w[b].qs[l];
    sum += fp16_to_f32(x[b].d) * fp16_to_f32(w[b].d) * static_cast<float>(isum);
  }
  return sum;
}

float dot_q4_0(const BlockQ8_0* x, const BlockQ4_0* w, int64_t nb) {
  float sum = 0.0f;
  for (int64_t b = 0; b < nb; ++b) {
    int32_t isum = 0;
    for (int l = 0; l < kQK4_0 / 2; ++l) {
      isum += ((w[b].qs[l] & 0xF) - 8) * x[b].qs[l];
      isum += ((w[b].qs[l] >> 4) - 8) * x[b].qs[l + kQK4_0 / 2];
    }
    sum += fp16_to_f32(x[b].d) * fp16_to_f32(w[b].d) * static_cast<float>(isum);
  }
  return sum;
}

// Σ_i w_i x_i with w_i = d·sc_s·q_i − dmin·m_s (sub-block s of 32) and x_i = dx·qx_i:
// dx·(d·Σ_s sc_s·Σ q·qx − dmin·Σ_s m_s·Σ qx), the Σ qx coming from the bsums.
float dot_q4_K(const BlockQ8_K* x, const BlockQ4_K* w, int64_t nb) {
  float sum = 0.0f;
  for (int64_t b = 0; b < nb; ++b) {
    int32_t isum = 0, msum = 0;
    for (int s = 0; s < 8; ++s) {
      int sc, m;
      q4_k_scale_min(s, w[b].scales, &sc, &m);
      const uint8_t* q = w[b].qs + (s / 2) * 32;
      const int shift = (s % 2) * 4;
      const int8_t* qx = x[b].qs + s * 32;
      int32_t sub = 0;
      for (int l = 0; l < 32; ++l) sub += ((q[l] >> shift) & 0xF) * qx[l];
      isum += sc * sub;
      msum += m * (x[b].bsums[2 * s] + x[b].bsums[2 * s + 1]);
    }
    sum += x[b].d * (fp16_to_f32(w[b].d) * static_cast<float>(isum) -
                     fp16_to_f32(w[b].dmin) * static_cast<float>(msum));
  }
  return sum;
}

// The portable multi-row dots are the single-row ones in a loop: the same result
// by construction (the SIMD tables share the weight loads instead).
template <auto Dot, class X, class W>
void dot4(const X* x, int64_t xs, const W* w, int64_t n, float* out) {
  for (int r = 0; r < 4; ++r) out[r] = Dot(x + r * xs, w, n);
}

void axpy(float* y, float a, const float* x, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] += a * x[i];
}
void scale(float* x, float a, int64_t n) {
  for (int64_t i = 0; i < n; ++i) x[i] *= a;
}
void add(float* out, const float* a, const float* b, int64_t n) {
  for (int64_t i = 0; i < n; ++i) out[i] = a[i] + b[i];
}
void mul(float* out, const float* a, const float* b, int64_t n) {
  for (int64_t i = 0; i < n; ++i) out[i] = a[i] * b[i];
}
float sum_sq(const float* x, int64_t n) { return dot_f32(x, x, n); }
float max(const float* x, int64_t n) {
  float r = x[0];
  for (int64_t i = 1; i < n; ++i) r = std::fmax(r, x[i]);
  return r;
}
float exp_sub_sum(float* x, float sub, int64_t n) {
  float sum = 0.0f;
  for (int64_t i = 0; i < n; ++i) {
    x[i] = std::exp(x[i] - sub);
    sum += x[i];
  }
  return sum;
}
void swiglu(float* out, const float* gate, const float* up, int64_t n) {
  for (int64_t i = 0; i < n; ++i) out[i] = gate[i] / (1.0f + std::exp(-gate[i])) * up[i];
}

void rope_pairs(float* x, const float* c, const float* s, int64_t n) {
  for (int64_t i = 0; i < n; i += 2) {
    const float a = x[i], b = x[i + 1];
    x[i] = a * c[i] + b * s[i];
    x[i + 1] = b * c[i + 1] + a * s[i + 1];
  }
}
void rope_halves(float* x, const float* c, const float* s, int64_t n) {
  const int64_t half = n / 2;
  for (int64_t i = 0; i < half; ++i) {
    const float a = x[i], b = x[i + half];
    x[i] = a * c[i] + b * s[i];
    x[i + half] = b * c[i + half] + a * s[i + half];
  }
}

}  // namespace

const Kernels kScalar = {dot_f32, dot_f16,     dot_bf16, dot_q8_0, dot_q4_0,   dot_q4_K,
                         dot4<dot_f32>, dot4<dot_f16>, dot4<dot_bf16>, dot4<dot_q8_0>,
                         dot4<dot_q4_0>, dot4<dot_q4_K>,
                         axpy,    scale,       add,      mul,      sum_sq,     max,
                         exp_sub_sum, swiglu,  rope_pairs, rope_halves};

}  // namespace hanul::cpu::simd
