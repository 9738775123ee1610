// Internal to kernels/cpu: the inner loops that differ per instruction set.
// Each set (scalar, AVX2, AVX-512) fills one table of these functions in its own
// source file (simd_scalar.cpp, simd_avx2.cpp, simd_avx512.cpp); the ops pick
// the table of the active set once per call. This is ggml's arch/ split
// (ggml-cpu/arch/x86/quants.c) and gemma.cpp's per-target compilation, done with
// plain intrinsics because Debian's Highway 1.0.3 has no int8 quad dot product.
#pragma once

#include <cstdint>

#include "hanul/kernels/cpu/ops.h"
#include "hanul/tensor/quant_blocks.h"

namespace hanul::cpu::simd {

struct Kernels {
  // Dot products of an activation row with one weight row of n elements
  // (float types) or nb blocks (quantized types, activations pre-quantized).
  float (*dot_f32)(const float* x, const float* w, int64_t n);
  float (*dot_f16)(const float* x, const uint16_t* w, int64_t n);
  float (*dot_bf16)(const float* x, const uint16_t* w, int64_t n);
  float (*dot_q8_0)(const BlockQ8_0* x, const BlockQ8_0* w, int64_t nb);
  float (*dot_q4_0)(const BlockQ8_0* x, const BlockQ4_0* w, int64_t nb);
  float (*dot_q4_K)(const BlockQ8_K* x, const BlockQ4_K* w, int64_t nb);
  // The same dot products for 4 activation rows at once against one weight row:
  // out[r] = dot(x + r·xs, w) for r < 4 (xs in floats or blocks). The weight is
  // loaded and unpacked once for the 4 rows, which is what makes prompt
  // processing (m > 1) cheaper per row than 4 matvecs. Each out[r] is
  // bit-identical to the single-row function, so batching never changes a result.
  void (*dot4_f32)(const float* x, int64_t xs, const float* w, int64_t n, float* out);
  void (*dot4_f16)(const float* x, int64_t xs, const uint16_t* w, int64_t n, float* out);
  void (*dot4_bf16)(const float* x, int64_t xs, const uint16_t* w, int64_t n, float* out);
  void (*dot4_q8_0)(const BlockQ8_0* x, int64_t xs, const BlockQ8_0* w, int64_t nb, float* out);
  void (*dot4_q4_0)(const BlockQ8_0* x, int64_t xs, const BlockQ4_0* w, int64_t nb, float* out);
  void (*dot4_q4_K)(const BlockQ8_K* x, int64_t xs, const BlockQ4_K* w, int64_t nb, float* out);

  void (*axpy)(float* y, float a, const float* x, int64_t n);  // y += a·x
  void (*scale)(float* x, float a, int64_t n);                 // x *= a
  void (*add)(float* out, const float* a, const float* b, int64_t n);
  void (*mul)(float* out, const float* a, const float* b, int64_t n);  // out = a·b elementwise
  float (*sum_sq)(const float* x, int64_t n);                  // Σ x²
  float (*max)(const float* x, int64_t n);                     // max x (n >= 1)
  float (*exp_sub_sum)(float* x, float sub, int64_t n);        // x = exp(x - sub); returns Σ x
  void (*swiglu)(float* out, const float* gate, const float* up, int64_t n);
  // RoPE as x = x·c + swap(x)·s over one head of n dims, with c and s laid out
  // per dim (the sign of the rotation folded into s): rope_pairs swaps dims
  // 2i <-> 2i+1, rope_halves swaps i <-> i + n/2.
  void (*rope_pairs)(float* x, const float* c, const float* s, int64_t n);
  void (*rope_halves)(float* x, const float* c, const float* s, int64_t n);
};

extern const Kernels kScalar;
#if defined(__x86_64__) || defined(_M_X64)
#define HANUL_X86 1
extern const Kernels kAvx2;
extern const Kernels kAvx512;
#endif

// The 6-bit scale and min of sub-block j (0..7) of a Q4_K/Q5_K super-block
// (ggml-quants.c get_scale_min_k4): j < 4 keep 6 bits in bytes j and j+4; the
// others split 4 low bits in byte j+4 and 2 high bits in the top of bytes j-4 / j.
inline void q4_k_scale_min(int j, const uint8_t* q, int* sc, int* m) {
  if (j < 4) {
    *sc = q[j] & 63;
    *m = q[j + 4] & 63;
  } else {
    *sc = (q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4);
    *m = (q[j + 4] >> 4) | ((q[j] >> 6) << 4);
  }
}

// The table of active_isa().
const Kernels& kernels();

}  // namespace hanul::cpu::simd
