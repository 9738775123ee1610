// Internal to kernels/cpu: causal attention as matrix products, the path that
// cpu::attention and cpu::attention_backward take from kMinTokens queries on
// (training's 256-token sequences, prompt processing); below it they keep their
// one-query-at-a-time dot products (decoding: one query per step).
//
// One head is processed a block of kQueryBlock queries at a time. The block's
// scores against the keys any of its queries may see, S = Q_b·Kᵀ (rows × keys,
// keys 0 .. pos0 + i1 - 1), come from the register-tiled GEMM (gemm.h); each row is
// then a float32 softmax over its own visible keys (max first), and the keys past
// them are set to 0, so products with the whole block's key range need no mask:
// out_b = P·V, and in the backward dP = dO_b·Vᵀ, dQ_b = dS·K, dK += dSᵀ·Q_b,
// dV += Pᵀ·dO_b. The same blocking as FlashAttention's (Dao et al. 2022, alg. 1-2,
// tiling over queries), without its running softmax: a block's score rows are
// held whole (rows × n_kv floats), which is what a CPU's L2 holds at these sizes.
//
// The blocks and the summation orders are fixed by the shapes alone (gemm.h), so
// the result does not depend on the thread count.
#pragma once

#include <cstdint>

namespace hanul::cpu::attention_tiles {

// Queries from which the product path is taken.
constexpr int64_t kMinTokens = 16;
// Queries per block: 64 rows × 256 keys of scores is 64 KiB.
constexpr int64_t kQueryBlock = 64;

// The attention weights of query rows [i0, i1) of one head:
// p[r·n_cols + j] = softmax_j(scale·q_r·k_j) over j <= pos0 + i0 + r, and 0 for the
// keys past it up to n_cols = pos0 + i1. q: the block's first query, its rows q_stride
// apart; k: the head's first key, rows kv_stride apart (one head's slices of the
// interleaved (tokens, heads, head_dim) tensors, read where they lie).
void probabilities(const float* q, int64_t q_stride, const float* k, int64_t kv_stride,
                   int64_t i0, int64_t i1, int64_t pos0, int head_dim, float scale, float* p);

}  // namespace hanul::cpu::attention_tiles
