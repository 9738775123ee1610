// SwiGLU, vectorised (the exp is a polynomial, see simd_x86.inc).
#include "hanul/kernels/cpu/ops.h"
#include "hanul/kernels/cpu/simd.h"

namespace hanul::cpu {

void swiglu(float* out, const float* gate, const float* up, int64_t n) {
  simd::kernels().swiglu(out, gate, up, n);
}

}  // namespace hanul::cpu
