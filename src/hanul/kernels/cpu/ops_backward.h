// The fast twins of kernels/ref/ops_backward.h with the same signatures and
// conventions (gradients accumulate; null means not wanted), in namespace
// hanul::cpu, for the backward ops that dominate a training step's time. The
// others have no cpu twin yet: callers use ref:: for them. Results never depend
// on the thread count (STYLE 9): each output element is summed by one task in a
// fixed order.
#pragma once

#include <cstdint>

#include "hanul/kernels/ref/ops_backward.h"

namespace hanul::cpu {

// dx += dy · W, dW += dyᵀ · x, dbias += Σ_rows dy, for float32 W [n, k]: two matmuls,
// done by cpu::matmul on transposed operands so they run on its tuned kernel.
void matmul_backward(float* dx, float* dw, float* dbias, const float* dy, const float* x,
                     const float* w, int64_t m, int64_t k, int64_t n, ThreadPool* pool);

// Backward of cpu::attention / ref::attention (see ref/ops_backward.h).
void attention_backward(float* dq, float* dk, float* dv, const float* dout, const float* q,
                        int64_t n_tokens, const float* k, const float* v, int64_t n_kv, int n_head,
                        int n_head_kv, int head_dim, int64_t pos0, float scale, ThreadPool* pool);

}  // namespace hanul::cpu
