// Backward of RMSNorm (ref/norm_backward.cpp has the algebra): with r = 1/sqrt(mean(x²) + eps),
//   dx_j += r·dy_j·w_j - x_j·r³/n · Σ_i dy_i·w_i·x_i,   dw_i += Σ_rows dy_i·x_i·r.
// Two passes: rows in parallel compute r and dx (each row is one task's), then
// column blocks in parallel sum dw over the rows in row order, the order of
// ref:: — so no partial sums of dw need combining and any split gives the same bits.
#include <algorithm>
#include <cmath>
#include <vector>

#include "hanul/base/thread_pool.h"
#include "hanul/kernels/cpu/ops_backward.h"

namespace hanul::cpu {

void rmsnorm_backward(float* dx, float* dweight, const float* dout, const float* x,
                      const float* weight, int64_t rows, int64_t n, float eps, ThreadPool* pool) {
  std::vector<float> rs(static_cast<size_t>(rows));  // (rows) 1/rms of each row
  parallel_for(pool, rows, 16, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const float* xr = x + r * n;
      const float* gr = dout + r * n;
      // Σx² and Σ dy·w·x in double in ref::'s order: the second cancels (its terms
      // have both signs) and its error reaches every dx of the row; a 4-way split of
      // these sums was tried and moved near-zero gradients enough to show through
      // AdamW in test_train's micro-batch check.
      double sum_sq = 0.0, dot = 0.0;
      for (int64_t i = 0; i < n; ++i) {
        sum_sq += static_cast<double>(xr[i]) * xr[i];
        dot += static_cast<double>(gr[i]) * weight[i] * xr[i];
      }
      const double rsd = 1.0 / std::sqrt(sum_sq / static_cast<double>(n) + eps);
      const float s = static_cast<float>(rsd);
      rs[static_cast<size_t>(r)] = s;
      if (!dx) continue;
      const float c = static_cast<float>(rsd * rsd * rsd * dot / static_cast<double>(n));
      float* dxr = dx + r * n;
      // ref::'s expression (no FMA), a loop the compiler vectorises
      for (int64_t j = 0; j < n; ++j) dxr[j] += s * gr[j] * weight[j] - c * xr[j];
    }
  });
  if (!dweight) return;
  constexpr int64_t kBlock = 64;  // columns per task: a cache line's worth of rows at a time
  parallel_for(pool, (n + kBlock - 1) / kBlock, 1, [&](int64_t b0, int64_t b1) {
    const int64_t c0 = b0 * kBlock, c1 = std::min(n, b1 * kBlock);
    for (int64_t r = 0; r < rows; ++r) {
      const float* xr = x + r * n;
      const float* gr = dout + r * n;
      const float s = rs[static_cast<size_t>(r)];
      for (int64_t i = c0; i < c1; ++i) dweight[i] += gr[i] * xr[i] * s;
    }
  });
}

}  // namespace hanul::cpu
