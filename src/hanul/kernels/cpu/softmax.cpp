// Row-wise softmax: max, then exp(x − max) and its sum in one pass, then scale.
#include "hanul/kernels/cpu/ops.h"
#include "hanul/kernels/cpu/simd.h"

namespace hanul::cpu {

void softmax(float* x, int64_t rows, int64_t n) {
  if (n <= 0) return;
  const simd::Kernels& kr = simd::kernels();
  for (int64_t r = 0; r < rows; ++r) {
    float* xr = x + r * n;
    const float sum = kr.exp_sub_sum(xr, kr.max(xr, n), n);
    kr.scale(xr, 1.0f / sum, n);
  }
}

}  // namespace hanul::cpu
