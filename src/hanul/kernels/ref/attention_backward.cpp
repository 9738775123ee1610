// Backward of causal GQA attention (ref/attention.cpp), one query row at a time,
// recomputing the softmax instead of storing it (FlashAttention-2, Dao 2023, §3.1.2).
// For query i of head h with visible keys j, s_j = scale·q·k_j, p = softmax(s),
// o = Σ_j p_j v_j:
//   dv_j += p_j·do
//   dp_j  = do·v_j
//   ds_j  = p_j·(dp_j - Σ_l p_l dp_l) = p_j·(dp_j - do·o)
//   dq   += scale·Σ_j ds_j k_j,   dk_j += scale·ds_j q
// Query heads of one group write the same kv head, so dk/dv sum over the group.
#include <cmath>
#include <vector>

#include "hanul/kernels/ref/ops_backward.h"

namespace hanul::ref {

void attention_backward(float* dq, float* dk, float* dv, const float* dout, const float* q,
                        int64_t n_tokens, const float* k, const float* v, int64_t n_kv, int n_head,
                        int n_head_kv, int head_dim, int64_t pos0, float scale,
                        ThreadPool* /*pool*/) {
  const int group = n_head / n_head_kv;
  std::vector<float> p(static_cast<size_t>(n_kv)), dp(static_cast<size_t>(n_kv));
  for (int64_t i = 0; i < n_tokens; ++i) {
    const int64_t n_visible = pos0 + i + 1;
    for (int h = 0; h < n_head; ++h) {
      const int hk = h / group;
      const float* qi = q + (i * n_head + h) * head_dim;
      const float* doi = dout + (i * n_head + h) * head_dim;
      auto kj = [&](int64_t j) { return k + (j * n_head_kv + hk) * head_dim; };
      auto vj = [&](int64_t j) { return v + (j * n_head_kv + hk) * head_dim; };
      // The forward's softmax, recomputed.
      float max = -INFINITY;
      for (int64_t j = 0; j < n_visible; ++j) {
        float s = 0.0f;
        for (int d = 0; d < head_dim; ++d) s += qi[d] * kj(j)[d];
        p[static_cast<size_t>(j)] = s * scale;
        max = std::fmax(max, s * scale);
      }
      double sum = 0.0;
      for (int64_t j = 0; j < n_visible; ++j) {
        p[static_cast<size_t>(j)] = std::exp(p[static_cast<size_t>(j)] - max);
        sum += p[static_cast<size_t>(j)];
      }
      double p_dot_dp = 0.0;  // Σ p_j dp_j = do·o
      for (int64_t j = 0; j < n_visible; ++j) {
        auto& pj = p[static_cast<size_t>(j)];
        pj = static_cast<float>(pj / sum);
        float d_p = 0.0f;
        for (int d = 0; d < head_dim; ++d) d_p += doi[d] * vj(j)[d];
        dp[static_cast<size_t>(j)] = d_p;
        p_dot_dp += static_cast<double>(pj) * d_p;
      }
      float* dqi = dq ? dq + (i * n_head + h) * head_dim : nullptr;
      for (int64_t j = 0; j < n_visible; ++j) {
        const float pj = p[static_cast<size_t>(j)];
        const float ds = pj * (dp[static_cast<size_t>(j)] - static_cast<float>(p_dot_dp)) * scale;
        float* dkj = dk ? dk + (j * n_head_kv + hk) * head_dim : nullptr;
        float* dvj = dv ? dv + (j * n_head_kv + hk) * head_dim : nullptr;
        for (int d = 0; d < head_dim; ++d) {
          if (dvj) dvj[d] += pj * doi[d];
          if (dqi) dqi[d] += ds * kj(j)[d];
          if (dkj) dkj[d] += ds * qi[d];
        }
      }
    }
  }
}

}  // namespace hanul::ref
