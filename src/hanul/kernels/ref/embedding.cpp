// Token embedding lookup (a row gather) and its backward, the scatter-add of the
// output gradient into the rows of the table that were read.
#include <cassert>
#include <cstring>

#include "hanul/kernels/ref/ops_backward.h"

namespace hanul::ref {

void embedding(float* out, const int32_t* tokens, int64_t n_tokens, const float* emb,
               int64_t n_embd) {
  for (int64_t t = 0; t < n_tokens; ++t) {
    assert(tokens[t] >= 0 && "ref::embedding: negative token id");
    std::memcpy(out + t * n_embd, emb + static_cast<int64_t>(tokens[t]) * n_embd,
                static_cast<size_t>(n_embd) * sizeof(float));
  }
}

void embedding_backward(float* demb, const float* dout, const int32_t* tokens, int64_t n_tokens,
                        int64_t n_embd) {
  // Tokens in order, so a repeated token sums its gradients in a fixed order.
  for (int64_t t = 0; t < n_tokens; ++t) {
    float* row = demb + static_cast<int64_t>(tokens[t]) * n_embd;
    const float* g = dout + t * n_embd;
    for (int64_t i = 0; i < n_embd; ++i) row[i] += g[i];
  }
}

}  // namespace hanul::ref
