// Backward of causal GQA attention (the math is in ref/attention_backward.cpp).
// From attention_tiles::kMinTokens queries on, as matrix products (attention_tiles.h):
// one task per kv head, which runs its group's heads in order, a block of queries at
// a time, and owns its rows of dk and dv. Below it (and for the tests of both paths),
// one head at a time in two parallel passes:
//   1. over queries i: recompute p_i· (softmax row), ds_i· = p·(dp - do·o)·scale,
//      and dq_i = Σ_j ds_ij k_j; keep P and dS of the head ([n_tokens, n_kv] each);
//   2. over keys j:    dk_j += Σ_i dS_ij q_i,  dv_j += Σ_i P_ij do_i.
// Pass 2 makes each key row owned by one task, so no two threads add into the same
// dk/dv row and the heads of a group add into their kv head in head order: the
// result does not depend on the thread count. Memory: 2·n_tokens·n_kv floats.
#include <algorithm>
#include <cmath>
#include <vector>

#include "hanul/base/thread_pool.h"
#include "hanul/kernels/cpu/attention_tiles.h"
#include "hanul/kernels/cpu/gemm.h"
#include "hanul/kernels/cpu/ops_backward.h"
#include "hanul/kernels/cpu/simd.h"

namespace hanul::cpu {
namespace {

void attention_backward_by_products(float* dq, float* dk, float* dv, const float* dout,
                                    const float* q, int64_t n_tokens, const float* k,
                                    const float* v, int n_head, int n_head_kv, int head_dim,
                                    int64_t pos0, float scale, ThreadPool* pool) {
  using namespace attention_tiles;
  using gemm::Layout;
  const simd::Kernels& kr = simd::kernels();
  const int group = n_head / n_head_kv;
  const int64_t q_stride = static_cast<int64_t>(n_head) * head_dim;
  const int64_t kv_stride = static_cast<int64_t>(n_head_kv) * head_dim;
  const int64_t n_blocks = (n_tokens + kQueryBlock - 1) / kQueryBlock;
  parallel_for(pool, n_head_kv, 1, [&](int64_t t0, int64_t t1) {
    // Per-thread buffers kept from call to call (training calls this once per sequence
    // and layer): allocated afresh each call, glibc handed their memory back to the
    // kernel on free and faulted it in again, ~7% of the backward's time. The heads'
    // slices of q, k, v, dout and of the gradients are read and written by the GEMM
    // where they lie (gemm.h's strides), not copied out and added back.
    thread_local std::vector<float> p, ds;
    for (int64_t hk = t0; hk < t1; ++hk) {
      const float* kh = k + hk * head_dim;
      const float* vh = v + hk * head_dim;
      for (int64_t h = hk * group; h < (hk + 1) * group; ++h)
        for (int64_t blk = 0; blk < n_blocks; ++blk) {
          const int64_t i0 = blk * kQueryBlock, i1 = std::min(n_tokens, i0 + kQueryBlock);
          const int64_t rows = i1 - i0, n_cols = pos0 + i1;
          const float* qb = q + i0 * q_stride + h * head_dim;
          const float* dob = dout + i0 * q_stride + h * head_dim;
          p.resize(static_cast<size_t>(rows * n_cols));
          ds.resize(p.size());
          probabilities(qb, q_stride, kh, kv_stride, i0, i1, pos0, head_dim, scale, p.data());
          // dP = dO_b·Vᵀ, then dS = P·(dP - Σ_j P·dP)·scale in place (0 past each row's keys).
          gemm::gemm(dob, Layout::kRows, q_stride, vh, Layout::kRows, kv_stride, rows, head_dim,
                     n_cols, ds.data(), n_cols, false, nullptr);
          for (int64_t r = 0; r < rows; ++r) {
            const float* pr = p.data() + r * n_cols;
            float* dsr = ds.data() + r * n_cols;
            const int64_t n_visible = pos0 + i0 + r + 1;
            // Σ_j P·dP in vector lanes: a serial sum waited on each add (~7% of the backward)
            const float p_dot_dp = kr.dot_f32(pr, dsr, n_visible);
            for (int64_t j = 0; j < n_visible; ++j) dsr[j] = pr[j] * (dsr[j] - p_dot_dp) * scale;
            std::fill(dsr + n_visible, dsr + n_cols, 0.0f);
          }
          // dQ_b += dS·K (K stored [keys, head_dim]: B transposed).
          if (dq)
            gemm::gemm(ds.data(), Layout::kRows, n_cols, kh, Layout::kTransposed, kv_stride, rows,
                       n_cols, head_dim, dq + i0 * q_stride + h * head_dim, q_stride, true, nullptr);
          // dK += dSᵀ·Q_b and dV += Pᵀ·dO_b: dS, P stored [rows, keys] are A transposed;
          // this task owns the kv head's rows of dk and dv, its heads add in head order.
          if (dk)
            gemm::gemm(ds.data(), Layout::kTransposed, n_cols, qb, Layout::kTransposed, q_stride,
                       n_cols, rows, head_dim, dk + hk * head_dim, kv_stride, true, nullptr);
          if (dv)
            gemm::gemm(p.data(), Layout::kTransposed, n_cols, dob, Layout::kTransposed, q_stride,
                       n_cols, rows, head_dim, dv + hk * head_dim, kv_stride, true, nullptr);
        }
    }
  });
}

}  // namespace

void attention_backward(float* dq, float* dk, float* dv, const float* dout, const float* q,
                        int64_t n_tokens, const float* k, const float* v, int64_t n_kv, int n_head,
                        int n_head_kv, int head_dim, int64_t pos0, float scale, ThreadPool* pool) {
  if (n_tokens <= 0) return;
  if (n_tokens >= attention_tiles::kMinTokens) {
    attention_backward_by_products(dq, dk, dv, dout, q, n_tokens, k, v, n_head, n_head_kv,
                                   head_dim, pos0, scale, pool);
    return;
  }
  const simd::Kernels& kr = simd::kernels();
  const int group = n_head / n_head_kv;
  const int64_t q_stride = static_cast<int64_t>(n_head) * head_dim;
  const int64_t kv_stride = static_cast<int64_t>(n_head_kv) * head_dim;
  std::vector<float> P(static_cast<size_t>(n_tokens * n_kv));   // [n_tokens, n_kv]
  std::vector<float> dS(static_cast<size_t>(n_tokens * n_kv));  // [n_tokens, n_kv], scale folded in
  for (int h = 0; h < n_head; ++h) {
    const int64_t hk = h / group;
    const float* kh = k + hk * head_dim;
    const float* vh = v + hk * head_dim;
    parallel_for(pool, n_tokens, 4, [&](int64_t i0, int64_t i1) {
      for (int64_t i = i0; i < i1; ++i) {
        const int64_t n_visible = pos0 + i + 1;
        const float* qi = q + i * q_stride + h * head_dim;
        const float* doi = dout + i * q_stride + h * head_dim;
        float* p = P.data() + i * n_kv;
        float* ds = dS.data() + i * n_kv;
        for (int64_t j = 0; j < n_visible; ++j)
          p[j] = kr.dot_f32(qi, kh + j * kv_stride, head_dim) * scale;
        const float inv = 1.0f / kr.exp_sub_sum(p, kr.max(p, n_visible), n_visible);
        kr.scale(p, inv, n_visible);
        float p_dot_dp = 0.0f;
        for (int64_t j = 0; j < n_visible; ++j) {
          ds[j] = kr.dot_f32(doi, vh + j * kv_stride, head_dim);  // dp_j for now
          p_dot_dp += p[j] * ds[j];
        }
        for (int64_t j = 0; j < n_visible; ++j) ds[j] = p[j] * (ds[j] - p_dot_dp) * scale;
        if (dq) {
          float* dqi = dq + i * q_stride + h * head_dim;
          for (int64_t j = 0; j < n_visible; ++j) kr.axpy(dqi, ds[j], kh + j * kv_stride, head_dim);
        }
      }
    });
    if (!dk && !dv) continue;
    parallel_for(pool, n_kv, 4, [&](int64_t j0, int64_t j1) {
      for (int64_t j = j0; j < j1; ++j) {
        // Queries that see key j: i >= j - pos0.
        for (int64_t i = std::max<int64_t>(0, j - pos0); i < n_tokens; ++i) {
          if (dk)
            kr.axpy(dk + j * kv_stride + hk * head_dim, dS[i * n_kv + j],
                    q + i * q_stride + h * head_dim, head_dim);
          if (dv)
            kr.axpy(dv + j * kv_stride + hk * head_dim, P[i * n_kv + j],
                    dout + i * q_stride + h * head_dim, head_dim);
        }
      }
    });
  }
}

}  // namespace hanul::cpu
