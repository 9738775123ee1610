// RMSNorm (Zhang & Sennrich 2019), as in HF LlamaRMSNorm: x / sqrt(mean(x²) + eps) * weight.
#include <cmath>

#include "hanul/kernels/ref/ops.h"

namespace hanul::ref {

void rmsnorm(float* out, const float* x, const float* weight, int64_t rows, int64_t n, float eps) {
  for (int64_t r = 0; r < rows; ++r) {
    const float* xr = x + r * n;
    float* outr = out + r * n;
    // Accumulate in double: the reference should be the most accurate of the twins.
    double sum_sq = 0.0;
    for (int64_t i = 0; i < n; ++i) sum_sq += static_cast<double>(xr[i]) * xr[i];
    const float scale = static_cast<float>(1.0 / std::sqrt(sum_sq / static_cast<double>(n) + eps));
    for (int64_t i = 0; i < n; ++i) outr[i] = xr[i] * scale * weight[i];
  }
}

}  // namespace hanul::ref
