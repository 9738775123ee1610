// Reference matmul: dequantize each weight row to float32 and take plain dot
// products. Slow on purpose; it is what the SIMD kernels are checked against.
#include <cassert>
#include <vector>

#include "hanul/base/thread_pool.h"
#include "hanul/kernels/ref/ops.h"
#include "hanul/tensor/quantize.h"

namespace hanul::ref {

void matmul(const float* x, int64_t m, int64_t k, const void* w, DType wt, int64_t n,
            const float* bias, float* y, ThreadPool* pool) {
  const int64_t w_row_bytes = row_bytes(wt, k);
  const auto* w_bytes = static_cast<const uint8_t*>(w);
  // Each output column j is owned by one task, so the split cannot change the sums.
  parallel_for(pool, n, 16, [&](int64_t j0, int64_t j1) {
    std::vector<float> w_row(static_cast<size_t>(k));
    for (int64_t j = j0; j < j1; ++j) {
      Status st = dequantize_row(wt, w_bytes + j * w_row_bytes, w_row.data(), k);
      assert(st.ok() && "ref::matmul: weight dtype has no dequantize_row");
      (void)st;
      for (int64_t i = 0; i < m; ++i) {
        const float* xi = x + i * k;
        float sum = 0.0f;
        for (int64_t l = 0; l < k; ++l) sum += xi[l] * w_row[static_cast<size_t>(l)];
        y[i * n + j] = bias ? sum + bias[j] : sum;
      }
    }
  });
}

}  // namespace hanul::ref
