// Backward of y = x · Wᵀ + bias (float32 W) as two forward matmuls, so the tuned
// cpu::matmul kernel does the O(m·n·k) work (llm.c's matmul_backward computes the
// same two products):
//   dx[m, k] = dy[m, n] · W[n, k]     = matmul(x = dy,  W' = Wᵀ [k, n])
//   dW[n, k] = dyᵀ[n, m] · x[m, k]    = matmul(x = dyᵀ, W' = xᵀ [k, m])
// The transposes cost O(m·n + m·k + n·k), small beside the products. cpu::matmul
// is thread-count invariant and the transposes and adds are exact or elementwise,
// so this is too.
#include <algorithm>
#include <vector>

#include "hanul/base/thread_pool.h"
#include "hanul/kernels/cpu/ops.h"
#include "hanul/kernels/cpu/ops_backward.h"

namespace hanul::cpu {
namespace {

// out[c, r] = in[r, c] for in [rows, cols], in 32×32 tiles so both sides stay in cache.
void transpose(float* out, const float* in, int64_t rows, int64_t cols, ThreadPool* pool) {
  constexpr int64_t kTile = 32;
  parallel_for(pool, (cols + kTile - 1) / kTile, 1, [&](int64_t b0, int64_t b1) {
    for (int64_t cb = b0 * kTile; cb < std::min(cols, b1 * kTile); cb += kTile)
      for (int64_t rb = 0; rb < rows; rb += kTile)
        for (int64_t c = cb; c < std::min(cols, cb + kTile); ++c)
          for (int64_t r = rb; r < std::min(rows, rb + kTile); ++r)
            out[c * rows + r] = in[r * cols + c];
  });
}

// acc += add, elementwise, split over the pool.
void accumulate(float* acc, const float* add_, int64_t n, ThreadPool* pool) {
  parallel_for(pool, n, 4096,
               [&](int64_t i0, int64_t i1) { add(acc + i0, acc + i0, add_ + i0, i1 - i0); });
}

}  // namespace

void matmul_backward(float* dx, float* dw, float* dbias, const float* dy, const float* x,
                     const float* w, int64_t m, int64_t k, int64_t n, ThreadPool* pool) {
  if (m <= 0 || n <= 0 || k <= 0) return;
  if (dx) {
    std::vector<float> wt(static_cast<size_t>(k * n)), tmp(static_cast<size_t>(m * k));
    transpose(wt.data(), w, n, k, pool);
    matmul(dy, m, n, wt.data(), DType::F32, k, nullptr, tmp.data(), pool);
    accumulate(dx, tmp.data(), m * k, pool);
  }
  if (dw || dbias) {
    std::vector<float> dyt(static_cast<size_t>(n * m));
    transpose(dyt.data(), dy, m, n, pool);
    if (dw) {
      std::vector<float> xt(static_cast<size_t>(k * m)), tmp(static_cast<size_t>(n * k));
      transpose(xt.data(), x, m, k, pool);
      matmul(dyt.data(), n, m, xt.data(), DType::F32, k, nullptr, tmp.data(), pool);
      accumulate(dw, tmp.data(), n * k, pool);
    }
    if (dbias) {
      std::vector<float> ones(static_cast<size_t>(m), 1.0f);
      parallel_for(pool, n, 64, [&](int64_t j0, int64_t j1) {
        for (int64_t j = j0; j < j1; ++j) dbias[j] += dot(dyt.data() + j * m, ones.data(), m);
      });
    }
  }
}

}  // namespace hanul::cpu
