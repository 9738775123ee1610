// Backward of y = x · Wᵀ + bias (float32 W) as two GEMMs (llm.c's matmul_backward
// computes the same two products):
//   dx[m, k] += dy[m, n] · W[n, k]     (W read as stored: the GEMM's B transposed)
//   dW[n, k] += dyᵀ[n, m] · x[m, k]    (dy and x read as stored: A and B transposed)
// gemm::gemm packs each operand from the layout it lies in, so no transposed copy of
// W, dy or x is made, and it adds into dx and dW in place. It is thread-count
// invariant (gemm.h), and so are the column sums of dbias (one task per column
// range, rows in order), so this is too.
#include <algorithm>
#include <vector>

#include "hanul/base/thread_pool.h"
#include "hanul/kernels/cpu/gemm.h"
#include "hanul/kernels/cpu/ops_backward.h"

namespace hanul::cpu {

void matmul_backward(float* dx, float* dw, float* dbias, const float* dy, const float* x,
                     const float* w, int64_t m, int64_t k, int64_t n, ThreadPool* pool) {
  if (m <= 0 || n <= 0 || k <= 0) return;
  using gemm::Layout;
  if (dx) gemm::gemm(dy, Layout::kRows, w, Layout::kTransposed, m, n, k, dx, true, pool);
  if (dw) gemm::gemm(dy, Layout::kTransposed, x, Layout::kTransposed, n, m, k, dw, true, pool);
  if (dbias) {
    // dbias[j] += Σ_i dy[i, j], each column summed from zero in row order (as
    // ref::matmul_backward does), the inner loop across columns so it vectorises.
    parallel_for(pool, n, 256, [&](int64_t j0, int64_t j1) {
      std::vector<float> sum(static_cast<size_t>(j1 - j0), 0.0f);
      for (int64_t i = 0; i < m; ++i) {
        const float* row = dy + i * n + j0;
        for (int64_t j = 0; j < j1 - j0; ++j) sum[j] += row[j];
      }
      for (int64_t j = j0; j < j1; ++j) dbias[j] += sum[j - j0];
    });
  }
}

}  // namespace hanul::cpu
