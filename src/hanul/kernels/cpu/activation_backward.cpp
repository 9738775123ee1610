// Backward of SwiGLU out = silu(g)·u (ref/activation_backward.cpp):
//   dgate += dout·u·σ·(1 + g·(1 - σ)),  dup += dout·g·σ,  σ = sigmoid(g).
// Blocks over the pool; σ by the vectorised float exp of cpu::softmax and the forward
// swiglu (simd.h's exp8, ~1 ulp, the same value for an element wherever it sits in
// the array), the rest ref::'s expressions in plain loops. ref:: takes the libm exp,
// so the two agree to a few ulps (test_train_ops checks them against each other);
// libm's scalar exp was ~40% of this kernel's time (15M training step: 0.042-0.059 s
// -> 0.033-0.049 s, alternated runs).
#include <algorithm>
#include <cmath>

#include "hanul/base/thread_pool.h"
#include "hanul/kernels/cpu/ops_backward.h"
#include "hanul/kernels/cpu/simd.h"

namespace hanul::cpu {

void swiglu_backward(float* dgate, float* dup, const float* dout, const float* gate,
                     const float* up, int64_t n, ThreadPool* pool) {
  constexpr int64_t kBlock = 1024;
  const simd::Kernels& kr = simd::kernels();
  parallel_for(pool, (n + kBlock - 1) / kBlock, 16, [&](int64_t b0, int64_t b1) {
    float sig[kBlock];  // σ(g) of one block
    for (int64_t b = b0; b < b1; ++b) {
      const int64_t i0 = b * kBlock, len = std::min(kBlock, n - i0);
      const float* g = gate + i0;
      for (int64_t i = 0; i < len; ++i) sig[i] = -g[i];
      kr.exp_sub_sum(sig, 0.0f, len);
      for (int64_t i = 0; i < len; ++i) sig[i] = 1.0f / (1.0f + sig[i]);
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
