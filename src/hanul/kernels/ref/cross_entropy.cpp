// Cross-entropy over the vocabulary with the softmax fused in, as
// torch.nn.functional.cross_entropy(logits, targets, ignore_index=-100,
// reduction='mean'). loss_t = logsumexp(logits_t) - logits_t[target_t];
// ∂loss_t/∂logits_t = softmax(logits_t) - onehot(target_t).
#include <cassert>
#include <cmath>

#include "hanul/kernels/ref/ops_backward.h"

namespace hanul::ref {

float cross_entropy(float* dlogits, const float* logits, const int32_t* targets, int64_t n_tokens,
                    int64_t n_vocab, float dloss) {
  int64_t n_valid = 0;
  for (int64_t t = 0; t < n_tokens; ++t) {
    assert((targets[t] == kIgnoreIndex || (targets[t] >= 0 && targets[t] < n_vocab)) &&
           "ref::cross_entropy: target outside the vocabulary");
    if (targets[t] != kIgnoreIndex) ++n_valid;
  }
  if (n_valid == 0) return 0.0f;
  const float inv_n = 1.0f / static_cast<float>(n_valid);
  double total = 0.0;
  for (int64_t t = 0; t < n_tokens; ++t) {
    if (targets[t] == kIgnoreIndex) continue;
    const float* lt = logits + t * n_vocab;
    float max = -INFINITY;
    for (int64_t i = 0; i < n_vocab; ++i) max = std::fmax(max, lt[i]);
    double sum = 0.0;
    for (int64_t i = 0; i < n_vocab; ++i) sum += std::exp(static_cast<double>(lt[i] - max));
    const double lse = max + std::log(sum);
    total += lse - lt[targets[t]];
    if (dlogits) {
      float* gt = dlogits + t * n_vocab;
      const float g = dloss * inv_n;
      for (int64_t i = 0; i < n_vocab; ++i) {
        const float prob = static_cast<float>(std::exp(static_cast<double>(lt[i]) - lse));
        gt[i] += g * (i == targets[t] ? prob - 1.0f : prob);
      }
    }
  }
  return static_cast<float>(total / static_cast<double>(n_valid));
}

}  // namespace hanul::ref
