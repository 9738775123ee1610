// Backward of RoPE: the transpose of the rotation R(θ) is R(-θ), so the gradient
// goes through cpu::rope's SIMD kernel x = x·c + swap(x)·s with the sines negated
// (ref/rope_backward.cpp). The angles are the forward's float32 formula.
#include <cmath>
#include <vector>

#include "hanul/kernels/cpu/ops_backward.h"
#include "hanul/kernels/cpu/ops.h"

namespace hanul::cpu {

void rope_backward(float* dx, int64_t n_tokens, int n_heads, int head_dim, const int32_t* positions,
                   const float* inv_freq, RopeLayout layout) {
  // R(θ)ᵀ = R(-θ): cpu::rope at the negated positions. The angle (float)(-p)·f is
  // exactly -((float)p·f), and cos/sin are even/odd to the bit, so this is the
  // forward's rotation with the sines negated.
  std::vector<int32_t> negated(static_cast<size_t>(n_tokens));
  for (int64_t t = 0; t < n_tokens; ++t) negated[static_cast<size_t>(t)] = -positions[t];
  rope(dx, n_tokens, n_heads, head_dim, negated.data(), inv_freq, layout);
}

}  // namespace hanul::cpu
