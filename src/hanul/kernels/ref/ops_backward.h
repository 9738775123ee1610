// The backward half of the ops of kernels/ref/ops.h, the foundation of training,
// plus the training-only ops that have no inference twin there (embedding lookup,
// cross-entropy, AdamW, gradient clipping). Each backward sits in ref/ beside its
// forward (STYLE 5): ref/norm_backward.cpp next to ref/norm.cpp, and so on.
// kernels/cpu/ops_backward.h declares the fast twins with the same signatures.
//
// Conventions, as in llm.c's *_backward functions:
//   - Every gradient output is ACCUMULATED into (+=), never overwritten, so a
//     caller zeroes its gradient buffers once per step and gets residual sums and
//     gradient accumulation over micro-batches for free. A null gradient pointer
//     means "not wanted" wherever the comment says so.
//   - d<name> has the shape of <name>; the inputs are those of the forward, which
//     the backward recomputes from where that is cheaper than storing (attention
//     recomputes its softmax, the way FlashAttention's backward does).
//   - float32, row-major, the layouts of ref/ops.h. The thread pool, where taken,
//     never changes a bit of the result: each output element is summed by one
//     task in a fixed order.
#pragma once

#include <cstdint>

#include "hanul/kernels/ref/ops.h"

namespace hanul {

// torch.optim.AdamW's hyper-parameters (its defaults except lr), Loshchilov &
// Hutter 2019, "Decoupled Weight Decay Regularization", Algorithm 2.
// double, as torch holds them (Python floats); the update casts each scalar it uses
// to float32 at the point torch's tensor ops do.
struct AdamWParams {
  double lr = 1e-3;
  double beta1 = 0.9;
  double beta2 = 0.999;
  double eps = 1e-8;
  double weight_decay = 1e-2;
};

// One gradient tensor of many, for the global-norm clipping over all of them.
struct GradSpan {
  float* data;
  int64_t n;
};

// targets equal to this are masked: no loss, no gradient (torch's default ignore_index).
inline constexpr int32_t kIgnoreIndex = -100;

namespace ref {

// --- embedding ------------------------------------------------------------------------

// Forward: out[t, :] = emb[tokens[t], :]; out [n_tokens, n_embd], emb [n_vocab, n_embd].
void embedding(float* out, const int32_t* tokens, int64_t n_tokens, const float* emb,
               int64_t n_embd);
// Backward: demb[tokens[t], :] += dout[t, :] (a scatter-add; repeated tokens sum).
void embedding_backward(float* demb, const float* dout, const int32_t* tokens, int64_t n_tokens,
                        int64_t n_embd);

// --- rmsnorm --------------------------------------------------------------------------

// Backward of rmsnorm(out, x, weight, rows, n, eps). dx [rows, n] and dweight [n] are
// accumulated; either may be null.
void rmsnorm_backward(float* dx, float* dweight, const float* dout, const float* x,
                      const float* weight, int64_t rows, int64_t n, float eps);

// --- rope -----------------------------------------------------------------------------

// Backward of rope, in place on dx [n_tokens, n_heads, head_dim]: the rotation is
// orthogonal, so its transpose is the rotation by -angle. (In place, unlike the other
// backwards: dq/dk of attention are rotated back before they reach the matmuls.)
void rope_backward(float* dx, int64_t n_tokens, int n_heads, int head_dim, const int32_t* positions,
                   const float* inv_freq, RopeLayout layout);

// --- swiglu ---------------------------------------------------------------------------

// Backward of out = silu(gate) * up: dgate += dout·up·silu'(gate), dup += dout·silu(gate).
void swiglu_backward(float* dgate, float* dup, const float* dout, const float* gate,
                     const float* up, int64_t n);

// --- matmul ---------------------------------------------------------------------------

// Backward of y[m, n] = x[m, k] · W[n, k]ᵀ + bias[n] with float32 W (training keeps
// float32 master weights):
//   dx[m, k] += dy · W,   dW[n, k] += dyᵀ · x,   dbias[n] += Σ_rows dy.
// dx, dw and dbias may each be null.
void matmul_backward(float* dx, float* dw, float* dbias, const float* dy, const float* x,
                     const float* w, int64_t m, int64_t k, int64_t n, ThreadPool* pool);

// --- attention ------------------------------------------------------------------------

// Backward of ref::attention (same arguments and layouts). dq [n_tokens, n_head,
// head_dim]; dk, dv [n_kv, n_head_kv, head_dim], where the n_head / n_head_kv query
// heads of a group sum into their shared kv head.
void attention_backward(float* dq, float* dk, float* dv, const float* dout, const float* q,
                        int64_t n_tokens, const float* k, const float* v, int64_t n_kv, int n_head,
                        int n_head_kv, int head_dim, int64_t pos0, float scale, ThreadPool* pool);

// --- cross-entropy over the vocabulary ------------------------------------------------

// Softmax + negative log-likelihood, as torch.nn.functional.cross_entropy with
// reduction='mean': returns the mean of -log softmax(logits[t])[targets[t]] over the
// tokens whose target is not kIgnoreIndex (0 when all are ignored; torch gives NaN).
// When dlogits is not null it accumulates dloss · ∂loss/∂logits into it:
//   dlogits[t, :] += dloss · (softmax(logits[t]) - onehot(targets[t])) / n_valid,
// and nothing for ignored tokens (the loss mask of SFT). Targets must be in
// [0, n_vocab) or kIgnoreIndex (the data loader checks them).
float cross_entropy(float* dlogits, const float* logits, const int32_t* targets, int64_t n_tokens,
                    int64_t n_vocab, float dloss);

// --- optimizer ------------------------------------------------------------------------

// The float32 scalars of one AdamW step, as adamw() computes them (for cpu::adamw's
// vector loop, which must use the same ones to give the same bits).
struct AdamWScalars {
  float decay, b1, one_minus_b1, b2, one_minus_b2, neg_step_size, bc2_sqrt, eps;
};
AdamWScalars adamw_scalars(const AdamWParams& hp, int64_t step);

// One AdamW step on n parameters, exactly torch.optim.AdamW (PyTorch 1.13,
// _single_tensor_adamw): p *= 1 - lr·wd; m = β1·m + (1-β1)·g; v = β2·v + (1-β2)·g²;
// p -= lr / (1-β1^t) · m / (sqrt(v) / sqrt(1-β2^t) + eps). step t counts from 1.
void adamw(float* param, const float* grad, float* m, float* v, int64_t n, const AdamWParams& hp,
           int64_t step);

// The L2 norm of all gradients together (torch.nn.utils.clip_grad_norm_'s total_norm),
// summed in double in a fixed order.
float grad_norm(const GradSpan* grads, int n_grads);
// Scales all gradients by min(1, max_norm / (norm + 1e-6)) as clip_grad_norm_ does, and
// returns the norm before clipping.
float clip_grad_norm(const GradSpan* grads, int n_grads, float max_norm);

}  // namespace ref
}  // namespace hanul
