// SwiGLU (Shazeer 2020, "GLU Variants Improve Transformer"): silu(gate) * up,
// the Llama MLP's nonlinearity; silu(g) = g * sigmoid(g).
#include <cmath>

#include "hanul/kernels/ref/ops.h"

namespace hanul::ref {

void swiglu(float* out, const float* gate, const float* up, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    const float g = gate[i];
    out[i] = g / (1.0f + std::exp(-g)) * up[i];
  }
}

}  // namespace hanul::ref
