// Softmax with the row maximum subtracted first, so exp never overflows.
#include <cmath>

#include "hanul/kernels/ref/ops.h"

namespace hanul::ref {

void softmax(float* x, int64_t rows, int64_t n) {
  for (int64_t r = 0; r < rows; ++r) {
    float* xr = x + r * n;
    float max = -INFINITY;
    for (int64_t i = 0; i < n; ++i) max = std::fmax(max, xr[i]);
    double sum = 0.0;
    for (int64_t i = 0; i < n; ++i) {
      xr[i] = std::exp(xr[i] - max);
      sum += xr[i];
    }
    const float inv = static_cast<float>(1.0 / sum);
    for (int64_t i = 0; i < n; ++i) xr[i] *= inv;
  }
}

}  // namespace hanul::ref
