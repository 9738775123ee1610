// Rotary position embedding (Su et al. 2021, RoFormer §3.4): each pair of dims
// (a, b) of a head is rotated by the angle position * inv_freq[pair].
#include <cmath>

#include "hanul/kernels/ref/ops.h"

namespace hanul::ref {

void rope(float* x, int64_t n_tokens, int n_heads, int head_dim, const int32_t* positions,
          const float* inv_freq, RopeLayout layout) {
  const int half = head_dim / 2;
  for (int64_t t = 0; t < n_tokens; ++t) {
    for (int h = 0; h < n_heads; ++h) {
      float* xh = x + (t * n_heads + h) * head_dim;
      for (int j = 0; j < half; ++j) {
        // float32 angle, as HF computes it (freqs = inv_freq ⊗ position_ids in fp32).
        const float angle = static_cast<float>(positions[t]) * inv_freq[j];
        const float c = std::cos(angle), s = std::sin(angle);
        const int ia = layout == RopeLayout::kHalves ? j : 2 * j;
        const int ib = layout == RopeLayout::kHalves ? j + half : 2 * j + 1;
        const float a = xh[ia], b = xh[ib];
        xh[ia] = a * c - b * s;
        xh[ib] = a * s + b * c;
      }
    }
  }
}

}  // namespace hanul::ref
