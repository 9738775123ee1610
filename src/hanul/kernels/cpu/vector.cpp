// Small vector helpers for the model (residual adds, scaling), on the SIMD table.
#include "hanul/kernels/cpu/ops.h"
#include "hanul/kernels/cpu/simd.h"

namespace hanul::cpu {

float dot(const float* a, const float* b, int64_t n) { return simd::kernels().dot_f32(a, b, n); }
void add(float* out, const float* a, const float* b, int64_t n) { simd::kernels().add(out, a, b, n); }
void axpy(float* y, float a, const float* x, int64_t n) { simd::kernels().axpy(y, a, x, n); }
void scale(float* x, float a, int64_t n) { simd::kernels().scale(x, a, n); }

}  // namespace hanul::cpu
