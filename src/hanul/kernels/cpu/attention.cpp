// Causal grouped-query attention, one task per (query token, head): scores by
// vector dot products, a two-pass softmax in float32 (max first, so exp cannot
// overflow), then out = Σ p_j v_j by axpy. Tasks write disjoint outputs and each
// runs in a fixed order, so the result does not depend on the thread count.
#include <vector>

#include "hanul/base/thread_pool.h"
#include "hanul/kernels/cpu/ops.h"
#include "hanul/kernels/cpu/simd.h"

namespace hanul::cpu {

void attention(float* out, const float* q, int64_t n_tokens, const float* k, const float* v,
               int64_t n_kv, int n_head, int n_head_kv, int head_dim, int64_t pos0, float scale,
               ThreadPool* pool) {
  const simd::Kernels& kr = simd::kernels();
  const int group = n_head / n_head_kv;
  const int64_t kv_stride = static_cast<int64_t>(n_head_kv) * head_dim;
  parallel_for(pool, n_tokens * n_head, 1, [&](int64_t t0, int64_t t1) {
    std::vector<float> p(static_cast<size_t>(n_kv));
    for (int64_t task = t0; task < t1; ++task) {
      const int64_t i = task / n_head;
      const int h = static_cast<int>(task % n_head);
      const int64_t hk = h / group;
      const int64_t n_visible = pos0 + i + 1;  // causal: keys 0 .. pos0 + i
      const float* qi = q + task * head_dim;
      for (int64_t j = 0; j < n_visible; ++j)
        p[static_cast<size_t>(j)] = kr.dot_f32(qi, k + j * kv_stride + hk * head_dim, head_dim) * scale;
      const float sum = kr.exp_sub_sum(p.data(), kr.max(p.data(), n_visible), n_visible);
      float* oi = out + task * head_dim;
      for (int d = 0; d < head_dim; ++d) oi[d] = 0.0f;
      for (int64_t j = 0; j < n_visible; ++j)
        kr.axpy(oi, p[static_cast<size_t>(j)], v + j * kv_stride + hk * head_dim, head_dim);
      kr.scale(oi, 1.0f / sum, head_dim);
    }
  });
}

}  // namespace hanul::cpu
