// Cross-entropy over the vocabulary with its gradient (ref/cross_entropy.cpp has the
// maths): loss_t = logsumexp(logits_t) - logits_t[target_t], gradient softmax - onehot.
// Rows in parallel, one vectorised float exp per logit (ref:: takes two double
// exps; the results agree to a few float ulps), the per-row losses added in row
// order in double at the end, so nothing depends on how rows were split.
#include <cassert>
#include <cmath>
#include <cstring>
#include <vector>

#include "hanul/base/thread_pool.h"
#include "hanul/kernels/cpu/ops_backward.h"
#include "hanul/kernels/cpu/simd.h"

namespace hanul::cpu {
namespace {


// in_place: the gradient overwrites `grad` (which may be `logits`); otherwise it is
// added to it. grad may be null when !in_place (loss only).
float cross_entropy_rows(float* grad, bool in_place, const float* logits, const int32_t* targets,
                         int64_t n_tokens, int64_t n_vocab, float dloss, ThreadPool* pool) {
  int64_t n_valid = 0;
  for (int64_t t = 0; t < n_tokens; ++t) {
    assert((targets[t] == kIgnoreIndex || (targets[t] >= 0 && targets[t] < n_vocab)) &&
           "cpu::cross_entropy: target outside the vocabulary");
    if (targets[t] != kIgnoreIndex) ++n_valid;
  }
  if (n_valid == 0) {
    if (in_place)
      std::memset(grad, 0, static_cast<size_t>(n_tokens * n_vocab) * sizeof(float));
    return 0.0f;
  }
  const simd::Kernels& kr = simd::kernels();
  const float g = dloss / static_cast<float>(n_valid);
  std::vector<double> row_loss(static_cast<size_t>(n_tokens), 0.0);
  parallel_for(pool, n_tokens, 4, [&](int64_t t0, int64_t t1) {
    std::vector<float> scratch;
    for (int64_t t = t0; t < t1; ++t) {
      const int32_t target = targets[t];
      float* gt = grad ? grad + t * n_vocab : nullptr;
      if (target == kIgnoreIndex) {
        if (in_place) std::memset(gt, 0, static_cast<size_t>(n_vocab) * sizeof(float));
        continue;
      }
      const float* lt = logits + t * n_vocab;
      const float target_logit = lt[target];  // before an in-place row is overwritten
      const float max = kr.max(lt, n_vocab);
      // One vectorised float exp per logit (simd.h's exp8, ~1 ulp): e = exp(l - max)
      // lands in the gradient row when in place, else in this task's scratch row.
      float* e = in_place ? gt : nullptr;
      if (!in_place) {
        scratch.resize(static_cast<size_t>(n_vocab));
        std::memcpy(scratch.data(), lt, static_cast<size_t>(n_vocab) * sizeof(float));
        e = scratch.data();
      }
      const float sum = kr.exp_sub_sum(e, max, n_vocab);
      row_loss[static_cast<size_t>(t)] = static_cast<double>(max) + std::log(static_cast<double>(sum)) - target_logit;
      if (!gt) continue;
      // softmax - onehot, times g: e·(g / sum), then g off the target. Adding into
      // zeros gives the in-place bits exactly (0 + x == x).
      const float scale = g / sum;
      if (in_place) {
        kr.scale(gt, scale, n_vocab);  // e is gt: the same products, in vector lanes
      } else {
        for (int64_t i = 0; i < n_vocab; ++i) gt[i] += e[i] * scale;
      }
      gt[target] -= g;
    }
  });
  double total = 0.0;
  for (double l : row_loss) total += l;
  return static_cast<float>(total / static_cast<double>(n_valid));
}

}  // namespace

float cross_entropy(float* dlogits, const float* logits, const int32_t* targets, int64_t n_tokens,
                    int64_t n_vocab, float dloss, ThreadPool* pool) {
  return cross_entropy_rows(dlogits, false, logits, targets, n_tokens, n_vocab, dloss, pool);
}

float cross_entropy_in_place(float* logits, const int32_t* targets, int64_t n_tokens,
                             int64_t n_vocab, float dloss, ThreadPool* pool) {
  return cross_entropy_rows(logits, true, logits, targets, n_tokens, n_vocab, dloss, pool);
}

}  // namespace hanul::cpu
