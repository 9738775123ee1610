// Causal grouped-query attention. Below attention_tiles::kMinTokens queries (decoding),
// one task per (query token, head): scores by vector dot products, a two-pass softmax
// in float32 (max first, so exp cannot overflow), then out = Σ p_j v_j by axpy. From
// kMinTokens on, one task per (head, block of queries), as matrix products
// (attention_tiles.h). Tasks write disjoint outputs and each runs in a fixed order,
// so the result does not depend on the thread count.
#include <algorithm>
#include <vector>

#include "hanul/base/thread_pool.h"
#include "hanul/kernels/cpu/attention_tiles.h"
#include "hanul/kernels/cpu/gemm.h"
#include "hanul/kernels/cpu/ops.h"
#include "hanul/kernels/cpu/simd.h"

namespace hanul::cpu {

namespace attention_tiles {

void probabilities(const float* q, int64_t q_stride, const float* k, int64_t kv_stride,
                   int64_t i0, int64_t i1, int64_t pos0, int head_dim, float scale, float* p) {
  const simd::Kernels& kr = simd::kernels();
  const int64_t rows = i1 - i0, n_cols = pos0 + i1;
  gemm::gemm(q, gemm::Layout::kRows, q_stride, k, gemm::Layout::kRows, kv_stride, rows, head_dim,
             n_cols, p, n_cols, false, nullptr);
  for (int64_t r = 0; r < rows; ++r) {
    float* pr = p + r * n_cols;
    const int64_t n_visible = pos0 + i0 + r + 1;
    kr.scale(pr, scale, n_visible);
    const float sum = kr.exp_sub_sum(pr, kr.max(pr, n_visible), n_visible);
    kr.scale(pr, 1.0f / sum, n_visible);
    std::fill(pr + n_visible, pr + n_cols, 0.0f);
  }
}

}  // namespace attention_tiles

namespace {

void attention_by_products(float* out, const float* q, int64_t n_tokens, const float* k,
                           const float* v, int n_head, int n_head_kv, int head_dim, int64_t pos0,
                           float scale, ThreadPool* pool) {
  using namespace attention_tiles;
  const int group = n_head / n_head_kv;
  const int64_t q_stride = static_cast<int64_t>(n_head) * head_dim;
  const int64_t kv_stride = static_cast<int64_t>(n_head_kv) * head_dim;
  const int64_t n_blocks = (n_tokens + kQueryBlock - 1) / kQueryBlock;
  // Later blocks see more keys: hand them out first, so the short ones fill the gaps.
  parallel_for(pool, n_head * n_blocks, 1, [&](int64_t t0, int64_t t1) {
    // Kept from call to call (attention_backward.cpp). The GEMM reads the head's
    // slices of q, k and v and writes its slice of out where they lie (gemm.h's
    // strides): copying them out first cost ~15% of the time in small memmoves.
    thread_local std::vector<float> p;
    for (int64_t task = t0; task < t1; ++task) {
      const int64_t blk = n_blocks - 1 - task / n_head;
      const int h = static_cast<int>(task % n_head);
      const int64_t hk = h / group;
      const int64_t i0 = blk * kQueryBlock, i1 = std::min(n_tokens, i0 + kQueryBlock);
      const int64_t rows = i1 - i0, n_cols = pos0 + i1;
      p.resize(static_cast<size_t>(rows * n_cols));
      probabilities(q + i0 * q_stride + h * head_dim, q_stride, k + hk * head_dim, kv_stride, i0,
                    i1, pos0, head_dim, scale, p.data());
      // out_b = P·V: V stored [keys, head_dim] is B stored transposed.
      gemm::gemm(p.data(), gemm::Layout::kRows, n_cols, v + hk * head_dim, gemm::Layout::kTransposed,
                 kv_stride, rows, n_cols, head_dim, out + i0 * q_stride + h * head_dim, q_stride,
                 false, nullptr);
    }
  });
}

}  // namespace

void attention(float* out, const float* q, int64_t n_tokens, const float* k, const float* v,
               int64_t n_kv, int n_head, int n_head_kv, int head_dim, int64_t pos0, float scale,
               ThreadPool* pool) {
  if (n_tokens >= attention_tiles::kMinTokens) {
    attention_by_products(out, q, n_tokens, k, v, n_head, n_head_kv, head_dim, pos0, scale, pool);
    return;
  }
  const simd::Kernels& kr = simd::kernels();
  const int group = n_head / n_head_kv;
  const int64_t kv_stride = static_cast<int64_t>(n_head_kv) * head_dim;
  parallel_for(pool, n_tokens * n_head, 1, [&](int64_t t0, int64_t t1) {
    std::vector<float> p(static_cast<size_t>(n_kv));
    for (int64_t task = t0; task < t1; ++task) {
      const int64_t i = task / n_head;
      const int h = static_cast<int>(task % n_head);
      const int64_t hk = h / group;
      const int64_t n_visible = pos0 + i + 1;  // causal: keys 0 .. pos0 + i
      const float* qi = q + task * head_dim;
      for (int64_t j = 0; j < n_visible; ++j)
        p[static_cast<size_t>(j)] = kr.dot_f32(qi, k + j * kv_stride + hk * head_dim, head_dim) * scale;
      const float sum = kr.exp_sub_sum(p.data(), kr.max(p.data(), n_visible), n_visible);
      float* oi = out + task * head_dim;
      for (int d = 0; d < head_dim; ++d) oi[d] = 0.0f;
      for (int64_t j = 0; j < n_visible; ++j)
        kr.axpy(oi, p[static_cast<size_t>(j)], v + j * kv_stride + hk * head_dim, head_dim);
      kr.scale(oi, 1.0f / sum, head_dim);
    }
  });
}

}  // namespace hanul::cpu
