// Backward of RMSNorm (ref/norm.cpp). With r = 1/sqrt(mean(x²) + eps) and
// y_i = x_i·r·w_i, and ∂r/∂x_j = -r³·x_j/n:
//   dw_i += dy_i·x_i·r
//   dx_j += r·dy_j·w_j - x_j·r³/n · Σ_i dy_i·w_i·x_i
// (Zhang & Sennrich 2019, §3; the same algebra as llm.c's layernorm_backward
// without the mean term).
#include <cmath>

#include "hanul/kernels/ref/ops_backward.h"

namespace hanul::ref {

void rmsnorm_backward(float* dx, float* dweight, const float* dout, const float* x,
                      const float* weight, int64_t rows, int64_t n, float eps) {
  for (int64_t r = 0; r < rows; ++r) {
    const float* xr = x + r * n;
    const float* gr = dout + r * n;
    double sum_sq = 0.0, dot = 0.0;  // double, as the forward: the reference is the accurate twin
    for (int64_t i = 0; i < n; ++i) {
      sum_sq += static_cast<double>(xr[i]) * xr[i];
      dot += static_cast<double>(gr[i]) * weight[i] * xr[i];
    }
    const double rs = 1.0 / std::sqrt(sum_sq / static_cast<double>(n) + eps);
    const float scale = static_cast<float>(rs);
    if (dweight)
      for (int64_t i = 0; i < n; ++i) dweight[i] += gr[i] * xr[i] * scale;
    if (dx) {
      const float c = static_cast<float>(rs * rs * rs * dot / static_cast<double>(n));
      float* dxr = dx + r * n;
      for (int64_t i = 0; i < n; ++i) dxr[i] += scale * gr[i] * weight[i] - c * xr[i];
    }
  }
}

}  // namespace hanul::ref
