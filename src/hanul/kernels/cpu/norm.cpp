// RMSNorm, vectorised: one pass for Σx², one for the scaling.
#include <cmath>

#include "hanul/kernels/cpu/ops.h"
#include "hanul/kernels/cpu/simd.h"

namespace hanul::cpu {

void rmsnorm(float* out, const float* x, const float* weight, int64_t rows, int64_t n, float eps) {
  const simd::Kernels& kr = simd::kernels();
  for (int64_t r = 0; r < rows; ++r) {
    const float mean_sq = kr.sum_sq(x + r * n, n) / static_cast<float>(n);
    const float s = 1.0f / std::sqrt(mean_sq + eps);
    kr.mul(out + r * n, x + r * n, weight, n);
    kr.scale(out + r * n, s, n);
  }
}

}  // namespace hanul::cpu
