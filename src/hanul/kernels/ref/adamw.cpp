// AdamW (Loshchilov & Hutter 2019, Algorithm 2) and global-norm gradient clipping,
// written to give what PyTorch 1.13 gives: torch/optim/adamw.py
// _single_tensor_adamw and torch/nn/utils/clip_grad.py clip_grad_norm_.
#include <cmath>

#include "hanul/kernels/ref/ops_backward.h"

namespace hanul::ref {

AdamWScalars adamw_scalars(const AdamWParams& hp, int64_t step) {
  // torch evaluates every scalar as a Python float (double) and each tensor op casts
  // it to float32.
  const double bc1 = 1.0 - std::pow(hp.beta1, static_cast<double>(step));
  const double bc2 = 1.0 - std::pow(hp.beta2, static_cast<double>(step));
  return {static_cast<float>(1.0 - hp.lr * hp.weight_decay),
          static_cast<float>(hp.beta1),
          static_cast<float>(1.0 - hp.beta1),
          static_cast<float>(hp.beta2),
          static_cast<float>(1.0 - hp.beta2),
          static_cast<float>(-(hp.lr / bc1)),
          static_cast<float>(std::sqrt(bc2)),
          static_cast<float>(hp.eps)};
}

void adamw(float* param, const float* grad, float* m, float* v, int64_t n, const AdamWParams& hp,
           int64_t step) {
  // The element expressions keep the association of torch's CPU kernels (addcmul:
  // self + value·t1·t2, addcdiv: self + value·t1 / t2).
  const AdamWScalars c = adamw_scalars(hp, step);
  for (int64_t i = 0; i < n; ++i) {
    const float g = grad[i];
    param[i] *= c.decay;  // decoupled weight decay: applied to the weight, not the gradient
    m[i] = m[i] * c.b1 + g * c.one_minus_b1;
    v[i] = v[i] * c.b2 + c.one_minus_b2 * g * g;
    const float denom = std::sqrt(v[i]) / c.bc2_sqrt + c.eps;
    param[i] += c.neg_step_size * m[i] / denom;
  }
}

float grad_norm(const GradSpan* grads, int n_grads) {
  double sum_sq = 0.0;
  for (int g = 0; g < n_grads; ++g)
    for (int64_t i = 0; i < grads[g].n; ++i)
      sum_sq += static_cast<double>(grads[g].data[i]) * grads[g].data[i];
  return static_cast<float>(std::sqrt(sum_sq));
}

float clip_grad_norm(const GradSpan* grads, int n_grads, float max_norm) {
  const float norm = grad_norm(grads, n_grads);
  const float coef = max_norm / (norm + 1e-6f);
  if (coef < 1.0f)  // torch multiplies by clamp(coef, max=1); a factor of 1 changes nothing
    for (int g = 0; g < n_grads; ++g)
      for (int64_t i = 0; i < grads[g].n; ++i) grads[g].data[i] *= coef;
  return norm;
}

}  // namespace hanul::ref
