// Backward of y = x · Wᵀ + bias (float32 W) as two matrix products (llm.c's
// matmul_backward computes the same two):
//   dx[m, k] += dy[m, n] · W[n, k]     (W read as stored: the GEMM's B transposed)
//   dW[n, k] += dyᵀ[n, m] · x[m, k]    (dy and x read as stored: A and B transposed)
// gemm::gemm packs each operand from the layout it lies in, so no transposed copy of
// W, dy or x is made. gemm adds each product's block sums (gemm.h) to the gradient
// in block order, in place: on a zeroed gradient (a step's first micro-batch) that is
// the product summed from zero, as ref:: has it; on a gradient that already holds
// earlier micro-batches the additions round in another order than ref::'s
// "sum, then add" (last bits only). No m × n temporary: for the output layer's dW
// (vocab × d_model) that was 37 MB written, read and added per step. Products with
// fewer than gemm::kMinRows rows take cpu::matmul's row-dot path, as a forward matmul
// of that many rows does, on transposed copies (small by definition), then add: the
// GEMM would be as thread-invariant, but its other rounding moves the AdamW step of
// near-zero gradients of the tiny test models past what
// tests/reference/check_train_step.py allows. Everything here is
// thread-count invariant (gemm.h, cpu::matmul; dbias sums each column in row order).
#include <algorithm>
#include <vector>

#include "hanul/base/thread_pool.h"
#include "hanul/kernels/cpu/gemm.h"
#include "hanul/kernels/cpu/ops.h"
#include "hanul/kernels/cpu/ops_backward.h"

namespace hanul::cpu {
namespace {

using gemm::Layout;

// out[c, r] = in[r, c] for in [rows, cols], in 32×32 tiles so both sides stay in cache.
std::vector<float> transposed(const float* in, int64_t rows, int64_t cols, ThreadPool* pool) {
  constexpr int64_t kTile = 32;
  std::vector<float> out(static_cast<size_t>(rows * cols));
  parallel_for(pool, (cols + kTile - 1) / kTile, 1, [&](int64_t b0, int64_t b1) {
    for (int64_t cb = b0 * kTile; cb < std::min(cols, b1 * kTile); cb += kTile)
      for (int64_t rb = 0; rb < rows; rb += kTile)
        for (int64_t c = cb; c < std::min(cols, cb + kTile); ++c)
          for (int64_t r = rb; r < std::min(rows, rb + kTile); ++r)
            out[c * rows + r] = in[r * cols + c];
  });
  return out;
}

// acc += add, elementwise, split over the pool.
void accumulate(float* acc, const std::vector<float>& add_, ThreadPool* pool) {
  parallel_for(pool, static_cast<int64_t>(add_.size()), 4096, [&](int64_t i0, int64_t i1) {
    add(acc + i0, acc + i0, add_.data() + i0, i1 - i0);
  });
}

// y[m, n] += A · Bᵀ (k deep), as the header comment says.
void add_product(float* y, const float* a, Layout la, const float* b, Layout lb, int64_t m,
                 int64_t k, int64_t n, ThreadPool* pool) {
  if (m < gemm::kMinRows) {  // the row-dot path wants A [m, k] and B [n, k]
    std::vector<float> at, bt;
    if (la == Layout::kTransposed) {
      at = transposed(a, k, m, pool);
      a = at.data();
    }
    if (lb == Layout::kTransposed) {
      bt = transposed(b, k, n, pool);
      b = bt.data();
    }
    std::vector<float> tmp(static_cast<size_t>(m * n));
    gemm::matmul_row_dots(a, m, k, b, DType::F32, n, nullptr, tmp.data(), pool);
    accumulate(y, tmp, pool);
  } else {
    gemm::gemm(a, la, b, lb, m, k, n, y, true, pool);
  }
}

}  // namespace

void matmul_backward(float* dx, float* dw, float* dbias, const float* dy, const float* x,
                     const float* w, int64_t m, int64_t k, int64_t n, ThreadPool* pool) {
  if (m <= 0 || n <= 0 || k <= 0) return;
  if (dx) add_product(dx, dy, Layout::kRows, w, Layout::kTransposed, m, n, k, pool);
  if (dw) add_product(dw, dy, Layout::kTransposed, x, Layout::kTransposed, n, m, k, pool);
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
