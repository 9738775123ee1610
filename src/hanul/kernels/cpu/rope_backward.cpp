// Backward of RoPE: the transpose of the rotation R(θ) is R(-θ), so the gradient
// goes through cpu::rope's SIMD kernel x = x·c + swap(x)·s with the sines negated
// (ref/rope_backward.cpp). The angles are the forward's float32 formula.
#include <cmath>
#include <vector>

#include "hanul/kernels/cpu/ops_backward.h"
#include "hanul/kernels/cpu/simd.h"

namespace hanul::cpu {

void rope_backward(float* dx, int64_t n_tokens, int n_heads, int head_dim, const int32_t* positions,
                   const float* inv_freq, RopeLayout layout) {
  const simd::Kernels& kr = simd::kernels();
  const int half = head_dim / 2;
  std::vector<float> c(static_cast<size_t>(head_dim)), s(static_cast<size_t>(head_dim));
  for (int64_t t = 0; t < n_tokens; ++t) {
    for (int j = 0; j < half; ++j) {
      const float angle = static_cast<float>(positions[t]) * inv_freq[j];
      const float cj = std::cos(angle), sj = std::sin(angle);
      // The first of a pair gets a·c + b·s, the second b·c − a·s.
      const int ia = layout == RopeLayout::kHalves ? j : 2 * j;
      const int ib = layout == RopeLayout::kHalves ? j + half : 2 * j + 1;
      c[ia] = cj;
      c[ib] = cj;
      s[ia] = sj;
      s[ib] = -sj;
    }
    for (int h = 0; h < n_heads; ++h) {
      float* gh = dx + (t * n_heads + h) * head_dim;
      if (layout == RopeLayout::kHalves)
        kr.rope_halves(gh, c.data(), s.data(), head_dim);
      else
        kr.rope_pairs(gh, c.data(), s.data(), head_dim);
    }
  }
}

}  // namespace hanul::cpu
