// Backward of y = x · Wᵀ + bias (ref/matmul.cpp) for float32 weights, written as
// the three sums it is:
//   dx[i, l] = Σ_j dy[i, j]·W[j, l],  dW[j, l] = Σ_i dy[i, j]·x[i, l],  dbias[j] = Σ_i dy[i, j].
// Slow on purpose: the twin that kernels/cpu/matmul_backward.cpp is checked against.
#include <vector>

#include "hanul/base/thread_pool.h"
#include "hanul/kernels/ref/ops_backward.h"

namespace hanul::ref {

void matmul_backward(float* dx, float* dw, float* dbias, const float* dy, const float* x,
                     const float* w, int64_t m, int64_t k, int64_t n, ThreadPool* pool) {
  // Each task owns whole rows of its output and sums in index order, so the
  // split over threads cannot change the result.
  if (dx) {
    parallel_for(pool, m, 4, [&](int64_t i0, int64_t i1) {
      for (int64_t i = i0; i < i1; ++i)
        for (int64_t l = 0; l < k; ++l) {
          float sum = 0.0f;
          for (int64_t j = 0; j < n; ++j) sum += dy[i * n + j] * w[j * k + l];
          dx[i * k + l] += sum;
        }
    });
  }
  if (dw || dbias) {
    parallel_for(pool, n, 4, [&](int64_t j0, int64_t j1) {
      for (int64_t j = j0; j < j1; ++j) {
        if (dw)
          for (int64_t l = 0; l < k; ++l) {
            float sum = 0.0f;
            for (int64_t i = 0; i < m; ++i) sum += dy[i * n + j] * x[i * k + l];
            dw[j * k + l] += sum;
          }
        if (dbias) {
          float sum = 0.0f;
          for (int64_t i = 0; i < m; ++i) sum += dy[i * n + j];
          dbias[j] += sum;
        }
      }
    });
  }
}

}  // namespace hanul::ref
