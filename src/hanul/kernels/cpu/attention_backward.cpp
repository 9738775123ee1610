// Backward of causal GQA attention (the math is in ref/attention_backward.cpp),
// one head at a time in two parallel passes:
//   1. over queries i: recompute p_i· (softmax row), ds_i· = p·(dp - do·o)·scale,
//      and dq_i = Σ_j ds_ij k_j; keep P and dS of the head ([n_tokens, n_kv] each);
//   2. over keys j:    dk_j += Σ_i dS_ij q_i,  dv_j += Σ_i P_ij do_i.
// Pass 2 makes each key row owned by one task, so no two threads add into the same
// dk/dv row and the heads of a group add into their kv head in head order: the
// result does not depend on the thread count. Memory: 2·n_tokens·n_kv floats.
#include <cmath>
#include <vector>

#include "hanul/base/thread_pool.h"
#include "hanul/kernels/cpu/ops_backward.h"
#include "hanul/kernels/cpu/simd.h"

namespace hanul::cpu {

void attention_backward(float* dq, float* dk, float* dv, const float* dout, const float* q,
                        int64_t n_tokens, const float* k, const float* v, int64_t n_kv, int n_head,
                        int n_head_kv, int head_dim, int64_t pos0, float scale, ThreadPool* pool) {
  if (n_tokens <= 0) return;
  const simd::Kernels& kr = simd::kernels();
  const int group = n_head / n_head_kv;
  const int64_t q_stride = static_cast<int64_t>(n_head) * head_dim;
  const int64_t kv_stride = static_cast<int64_t>(n_head_kv) * head_dim;
  std::vector<float> P(static_cast<size_t>(n_tokens * n_kv));   // [n_tokens, n_kv]
  std::vector<float> dS(static_cast<size_t>(n_tokens * n_kv));  // [n_tokens, n_kv], scale folded in
  for (int h = 0; h < n_head; ++h) {
    const int64_t hk = h / group;
    const float* kh = k + hk * head_dim;
    const float* vh = v + hk * head_dim;
    parallel_for(pool, n_tokens, 4, [&](int64_t i0, int64_t i1) {
      for (int64_t i = i0; i < i1; ++i) {
        const int64_t n_visible = pos0 + i + 1;
        const float* qi = q + i * q_stride + h * head_dim;
        const float* doi = dout + i * q_stride + h * head_dim;
        float* p = P.data() + i * n_kv;
        float* ds = dS.data() + i * n_kv;
        for (int64_t j = 0; j < n_visible; ++j)
          p[j] = kr.dot_f32(qi, kh + j * kv_stride, head_dim) * scale;
        const float inv = 1.0f / kr.exp_sub_sum(p, kr.max(p, n_visible), n_visible);
        kr.scale(p, inv, n_visible);
        float p_dot_dp = 0.0f;
        for (int64_t j = 0; j < n_visible; ++j) {
          ds[j] = kr.dot_f32(doi, vh + j * kv_stride, head_dim);  // dp_j for now
          p_dot_dp += p[j] * ds[j];
        }
        for (int64_t j = 0; j < n_visible; ++j) ds[j] = p[j] * (ds[j] - p_dot_dp) * scale;
        if (dq) {
          float* dqi = dq + i * q_stride + h * head_dim;
          for (int64_t j = 0; j < n_visible; ++j) kr.axpy(dqi, ds[j], kh + j * kv_stride, head_dim);
        }
      }
    });
    if (!dk && !dv) continue;
    parallel_for(pool, n_kv, 4, [&](int64_t j0, int64_t j1) {
      for (int64_t j = j0; j < j1; ++j) {
        // Queries that see key j: i >= j - pos0.
        for (int64_t i = std::max<int64_t>(0, j - pos0); i < n_tokens; ++i) {
          if (dk)
            kr.axpy(dk + j * kv_stride + hk * head_dim, dS[i * n_kv + j],
                    q + i * q_stride + h * head_dim, head_dim);
          if (dv)
            kr.axpy(dv + j * kv_stride + hk * head_dim, P[i * n_kv + j],
                    dout + i * q_stride + h * head_dim, head_dim);
        }
      }
    });
  }
}

}  // namespace hanul::cpu
