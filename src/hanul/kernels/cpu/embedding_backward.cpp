// Backward of the embedding lookup: the scatter-add demb[tokens[t]] += dout[t],
// tokens in order so a repeated token sums its rows in a fixed order (the order
// of ref/embedding.cpp, so the bits are the same), each row by the SIMD add.
#include "hanul/kernels/cpu/ops_backward.h"
#include "hanul/kernels/cpu/simd.h"

namespace hanul::cpu {

void embedding_backward(float* demb, const float* dout, const int32_t* tokens, int64_t n_tokens,
                        int64_t n_embd) {
  const simd::Kernels& kr = simd::kernels();
  for (int64_t t = 0; t < n_tokens; ++t) {
    float* row = demb + static_cast<int64_t>(tokens[t]) * n_embd;
    kr.add(row, row, dout + t * n_embd, n_embd);
  }
}

}  // namespace hanul::cpu
