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
#include "hanul/kernels/cpu/simd.h"

namespace hanul::cpu {

void rmsnorm_backward(float* dx, float* dweight, const float* dout, const float* x,
                      const float* weight, int64_t rows, int64_t n, float eps, ThreadPool* pool) {
  const simd::Kernels& kr = simd::kernels();
  std::vector<float> rs(static_cast<size_t>(rows));  // (rows) 1/rms of each row
  parallel_for(pool, rows, 16, [&](int64_t r0, int64_t r1) {
    std::vector<float> gw(static_cast<size_t>(n));  // (n) dy·w of one row
    for (int64_t r = r0; r < r1; ++r) {
      const float* xr = x + r * n;
      const float* gr = dout + r * n;
      // float sums, as cpu::rmsnorm's forward computes the same r
      const float s = 1.0f / std::sqrt(kr.sum_sq(xr, n) / static_cast<float>(n) + eps);
      rs[static_cast<size_t>(r)] = s;
      if (!dx) continue;
      kr.mul(gw.data(), gr, weight, n);
      const float dot = kr.dot_f32(gw.data(), xr, n);
      const float c = s * s * s * dot / static_cast<float>(n);
      float* dxr = dx + r * n;
      kr.axpy(dxr, s, gw.data(), n);
      kr.axpy(dxr, -c, xr, n);
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
