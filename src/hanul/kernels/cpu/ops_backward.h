// The fast twins of kernels/ref/ops_backward.h with the same signatures and
// conventions (gradients accumulate; null means not wanted), in namespace
// hanul::cpu, for every op of a training step. Results never depend on the
// thread count (STYLE 9): each output element is summed by one task in a fixed
// order, and the one reduction across tasks (grad_norm) sums fixed chunks in a
// fixed order. Where ref:: takes no pool but the work pays for threads, the twin
// takes a trailing `ThreadPool* pool` (null: the calling thread does it all).
#pragma once

#include <cstdint>

#include "hanul/kernels/ref/ops_backward.h"

namespace hanul::cpu {

// dx += dy · W, dW += dyᵀ · x, dbias += Σ_rows dy, for float32 W [n, k]: two matmuls,
// done by gemm::gemm reading the operands in the layout they are stored in (no transposed copies);
// products of fewer than gemm::kMinRows rows take cpu::matmul's row-dot path.
void matmul_backward(float* dx, float* dw, float* dbias, const float* dy, const float* x,
                     const float* w, int64_t m, int64_t k, int64_t n, ThreadPool* pool);

// Backward of cpu::attention / ref::attention (see ref/ops_backward.h).
void attention_backward(float* dq, float* dk, float* dv, const float* dout, const float* q,
                        int64_t n_tokens, const float* k, const float* v, int64_t n_kv, int n_head,
                        int n_head_kv, int head_dim, int64_t pos0, float scale, ThreadPool* pool);

// Scatter-add demb[tokens[t], :] += dout[t, :], tokens in order: bit-identical to ref::.
void embedding_backward(float* demb, const float* dout, const int32_t* tokens, int64_t n_tokens,
                        int64_t n_embd);

// Rows in parallel for dx; dweight summed over the rows in row order by column
// blocks, with ref::'s arithmetic in ref::'s order: bit-identical to ref::.
void rmsnorm_backward(float* dx, float* dweight, const float* dout, const float* x,
                      const float* weight, int64_t rows, int64_t n, float eps, ThreadPool* pool);

// In place on dx, the rotation by -angle through the SIMD rope kernel.
void rope_backward(float* dx, int64_t n_tokens, int n_heads, int head_dim, const int32_t* positions,
                   const float* inv_freq, RopeLayout layout);

// Elementwise; sigmoid through the SIMD exp of cpu::softmax.
void swiglu_backward(float* dgate, float* dup, const float* dout, const float* gate,
                     const float* up, int64_t n, ThreadPool* pool);

// ref::cross_entropy, rows in parallel, one vectorised float exp per logit (ref:: takes
// two double exps): within a few float ulps of ref::, and the same bits for any thread
// count. dlogits null: the loss alone.
float cross_entropy(float* dlogits, const float* logits, const int32_t* targets, int64_t n_tokens,
                    int64_t n_vocab, float dloss, ThreadPool* pool);
// The same loss, with the gradient dloss · (softmax - onehot) / n_valid WRITTEN over
// the logits (0 in the rows of ignored targets): a training step needs the logits
// only to get their gradient, and [tokens, vocab] is its largest buffer.
float cross_entropy_in_place(float* logits, const int32_t* targets, int64_t n_tokens,
                             int64_t n_vocab, float dloss, ThreadPool* pool);

// ref::adamw, elementwise over ranges of the pool: bit-identical to ref:: (the same
// float32 operations in the same order, no contraction into FMA).
void adamw(float* param, const float* grad, float* m, float* v, int64_t n, const AdamWParams& hp,
           int64_t step, ThreadPool* pool);
// A training step's whole update of one parameter in one pass over its memory: the
// gradient times grad_scale (clip_scale()'s factor; 1 leaves it as it is), adamw() on
// that, then the gradient set to 0 (zero_grad). The same bits as scaling the
// gradient as clip_grad_norm does, adamw() and zeroing it, which read and write the
// gradient three more times.
void adamw_step(float* param, float* grad, float* m, float* v, int64_t n, const AdamWParams& hp,
                int64_t step, float grad_scale, ThreadPool* pool);

// ref::grad_norm's Σ g² in double, over fixed chunks of kNormChunk elements of each
// span, the chunk sums added in span and chunk order: the same bits for any pool.
inline constexpr int64_t kNormChunk = 1 << 16;
float grad_norm(const GradSpan* grads, int n_grads, ThreadPool* pool);
// The factor clip_grad_norm multiplies the gradients by: max_norm / (norm + 1e-6)
// when that is below 1 (torch clamps it to at most 1), else exactly 1.
float clip_scale(float norm, float max_norm);
float clip_grad_norm(const GradSpan* grads, int n_grads, float max_norm, ThreadPool* pool);

}  // namespace hanul::cpu
