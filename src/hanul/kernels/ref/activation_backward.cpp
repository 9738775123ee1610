// Backward of SwiGLU (ref/activation.cpp). With σ = sigmoid(g) and
// silu(g) = g·σ, silu'(g) = σ + g·σ·(1 - σ) = σ·(1 + g·(1 - σ)).
#include <cmath>

#include "hanul/kernels/ref/ops_backward.h"

namespace hanul::ref {

void swiglu_backward(float* dgate, float* dup, const float* dout, const float* gate,
                     const float* up, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    const float g = gate[i];
    const float sig = 1.0f / (1.0f + std::exp(-g));
    if (dgate) dgate[i] += dout[i] * up[i] * sig * (1.0f + g * (1.0f - sig));
    if (dup) dup[i] += dout[i] * g * sig;
  }
}

}  // namespace hanul::ref
