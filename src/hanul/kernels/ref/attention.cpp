// Causal grouped-query attention (Ainslie et al. 2023) of one sequence, written
// as the formula: out = softmax(scale · q kᵀ + causal mask) v, one query at a time.
#include <cmath>
#include <vector>

#include "hanul/kernels/ref/ops.h"

namespace hanul::ref {

void attention(float* out, const float* q, int64_t n_tokens, const float* k, const float* v,
               int64_t n_kv, int n_head, int n_head_kv, int head_dim, int64_t pos0, float scale,
               ThreadPool* /*pool*/) {
  const int group = n_head / n_head_kv;
  std::vector<float> p(static_cast<size_t>(n_kv));
  for (int64_t i = 0; i < n_tokens; ++i) {
    const int64_t n_visible = pos0 + i + 1;  // keys 0 .. pos0 + i
    for (int h = 0; h < n_head; ++h) {
      const int hk = h / group;
      const float* qi = q + (i * n_head + h) * head_dim;
      float max = -INFINITY;
      for (int64_t j = 0; j < n_visible; ++j) {
        const float* kj = k + (j * n_head_kv + hk) * head_dim;
        float s = 0.0f;
        for (int d = 0; d < head_dim; ++d) s += qi[d] * kj[d];
        p[static_cast<size_t>(j)] = s * scale;
        max = std::fmax(max, s * scale);
      }
      double sum = 0.0;
      for (int64_t j = 0; j < n_visible; ++j) {
        p[static_cast<size_t>(j)] = std::exp(p[static_cast<size_t>(j)] - max);
        sum += p[static_cast<size_t>(j)];
      }
      float* oi = out + (i * n_head + h) * head_dim;
      for (int d = 0; d < head_dim; ++d) {
        double acc = 0.0;
        for (int64_t j = 0; j < n_visible; ++j)
          acc += p[static_cast<size_t>(j)] * v[(j * n_head_kv + hk) * head_dim + d];
        oi[d] = static_cast<float>(acc / sum);
      }
    }
  }
}

}  // namespace hanul::ref
