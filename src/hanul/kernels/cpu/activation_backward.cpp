// Backward of SwiGLU out = silu(g)·u (ref/activation_backward.cpp):
//   dgate += dout·u·σ·(1 + g·(1 - σ)),  dup += dout·g·σ,  σ = sigmoid(g).
// Blocks over the pool with ref::'s arithmetic (so ref::'s bits): σ by the libm
// exp, the rest plain loops the compiler vectorises. The SIMD exp of cpu::softmax
// (~1 ulp) was tried; micro-batch accumulation in test_train then drifted past
// its 1e-6 check through AdamW's amplification of near-zero gradients.
#include <algorithm>
#include <cmath>

#include "hanul/base/thread_pool.h"
#include "hanul/kernels/cpu/ops_backward.h"

namespace hanul::cpu {

void swiglu_backward(float* dgate, float* dup, const float* dout, const float* gate,
                     const float* up, int64_t n, ThreadPool* pool) {
  constexpr int64_t kBlock = 1024;
  parallel_for(pool, (n + kBlock - 1) / kBlock, 16, [&](int64_t b0, int64_t b1) {
    float sig[kBlock];  // σ(g) of one block
    for (int64_t b = b0; b < b1; ++b) {
      const int64_t i0 = b * kBlock, len = std::min(kBlock, n - i0);
      const float* g = gate + i0;
      for (int64_t i = 0; i < len; ++i) sig[i] = 1.0f / (1.0f + std::exp(-g[i]));
      const float* d = dout + i0;
      const float* u = up + i0;
      if (dgate) {
        float* dg = dgate + i0;
        for (int64_t i = 0; i < len; ++i) dg[i] += d[i] * u[i] * sig[i] * (1.0f + g[i] * (1.0f - sig[i]));
      }
      if (dup) {
        float* du = dup + i0;
        for (int64_t i = 0; i < len; ++i) du[i] += d[i] * g[i] * sig[i];
      }
    }
  });
}

}  // namespace hanul::cpu
