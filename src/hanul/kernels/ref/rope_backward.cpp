// Backward of RoPE (ref/rope.cpp). Each pair (a, b) goes through the rotation
// R(θ) = [[c, -s], [s, c]]; the gradient goes through R(θ)ᵀ = R(-θ), so the
// backward is the same rotation with the sine negated. The angle is computed in
// float32 exactly as the forward computes it, so the two are exact transposes.
#include <cmath>

#include "hanul/kernels/ref/ops_backward.h"

namespace hanul::ref {

void rope_backward(float* dx, int64_t n_tokens, int n_heads, int head_dim, const int32_t* positions,
                   const float* inv_freq, RopeLayout layout) {
  const int half = head_dim / 2;
  for (int64_t t = 0; t < n_tokens; ++t) {
    for (int h = 0; h < n_heads; ++h) {
      float* gh = dx + (t * n_heads + h) * head_dim;
      for (int j = 0; j < half; ++j) {
        const float angle = static_cast<float>(positions[t]) * inv_freq[j];
        const float c = std::cos(angle), s = std::sin(angle);
        const int ia = layout == RopeLayout::kHalves ? j : 2 * j;
        const int ib = layout == RopeLayout::kHalves ? j + half : 2 * j + 1;
        const float ga = gh[ia], gb = gh[ib];
        gh[ia] = ga * c + gb * s;
        gh[ib] = -ga * s + gb * c;
      }
    }
  }
}

}  // namespace hanul::ref
