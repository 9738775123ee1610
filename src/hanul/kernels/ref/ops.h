// The scalar reference of every op: readable, obviously right, and the fallback.
// kernels/cpu/ops.h declares the same functions with the same signatures in
// namespace hanul::cpu (SIMD + threads); tests compare the two on random shapes.
//
// Layout conventions (row-major, outermost first):
//   activations x: [m, k] float32, row stride k
//   weights W:     [n, k] in dtype wt, each row k elements of GGUF blocks
//   y = x · Wᵀ:    [m, n] float32
#pragma once

#include <cstdint>

#include "hanul/tensor/dtype.h"

namespace hanul {
class ThreadPool;

// How RoPE pairs the dimensions of a head (see model/config.h):
//   kHalves: dim i pairs with i + head_dim/2 (GPT-NeoX; HF checkpoints, Qwen2 GGUF)
//   kPairs:  dim 2i pairs with 2i + 1 (GGUF llama, whose Q/K rows are permuted)
enum class RopeLayout { kHalves, kPairs };

namespace ref {

// y[m, n] = x[m, k] · W[n, k]ᵀ  (+ bias[n] when bias != nullptr).
// W is any dtype of tensor/dtype.h that dequantize_row handles.
void matmul(const float* x, int64_t m, int64_t k, const void* w, DType wt, int64_t n,
            const float* bias, float* y, ThreadPool* pool);

// out[i] = x[i] / sqrt(mean(x²) + eps) * weight[i], over rows of length n.
void rmsnorm(float* out, const float* x, const float* weight, int64_t rows, int64_t n, float eps);

// In place on x: [n_tokens, n_heads, head_dim]. Token t is at positions[t];
// the angle of pair j is positions[t] * inv_freq[j], j < head_dim / 2.
void rope(float* x, int64_t n_tokens, int n_heads, int head_dim, const int32_t* positions,
          const float* inv_freq, RopeLayout layout);

// Row-wise softmax in place, rows of length n.
void softmax(float* x, int64_t rows, int64_t n);

// out[i] = silu(gate[i]) * up[i]
void swiglu(float* out, const float* gate, const float* up, int64_t n);

// Causal grouped-query attention of one sequence.
//   q:   [n_tokens, n_head, head_dim]       query token i sits at position pos0 + i
//   k,v: [n_kv, n_head_kv, head_dim]        key j sits at position j (the cache)
//   out: [n_tokens, n_head, head_dim]
// Query i attends to keys j <= pos0 + i (requires n_kv >= pos0 + n_tokens).
// Head h uses kv head h / (n_head / n_head_kv); scores are scaled by `scale`.
void attention(float* out, const float* q, int64_t n_tokens, const float* k, const float* v,
               int64_t n_kv, int n_head, int n_head_kv, int head_dim, int64_t pos0, float scale,
               ThreadPool* pool);

}  // namespace ref
}  // namespace hanul
