// The cpu:: twins of the training ops (kernels/cpu/ops_backward.h: rmsnorm, rope,
// swiglu and embedding backwards, cross-entropy, AdamW, gradient norm and
// clipping) against their ref:: versions on random shapes with odd sizes, and
// STYLE 9: with no pool, 1 thread and 3 threads every result has the same bits.
// Where a twin sums in float what ref:: sums in double, the check is normwise:
// max |cpu - ref| <= tol · max |ref|, tol a few float32 roundings of the sums.
#include <gtest/gtest.h>

#include "kernel_test_util.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "hanul/base/thread_pool.h"
#include "hanul/kernels/cpu/ops.h"
#include "hanul/kernels/cpu/ops_backward.h"
#include "hanul/kernels/ref/ops_backward.h"

namespace hanul {
namespace {

using Vec = std::vector<float>;


// max |a - b| / max |b| (0 when b is all zeros and a equals it).
double normwise_error(const Vec& a, const Vec& b) {
  double diff = 0, scale = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    diff = std::max(diff, std::fabs(static_cast<double>(a[i]) - b[i]));
    scale = std::max(scale, std::fabs(static_cast<double>(b[i])));
  }
  return scale > 0 ? diff / scale : diff;
}

bool same_bits(const Vec& a, const Vec& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

// Runs fn(pool) with no pool, 1 thread and 3 threads; fn returns the outputs.
template <typename Fn>
std::vector<Vec> with_pools(Fn fn) {
  ThreadPool one(1), three(3);
  return {fn(nullptr), fn(&one), fn(&three)};
}

void expect_thread_independent(const std::vector<Vec>& outs) {
  for (size_t i = 1; i < outs.size(); ++i) EXPECT_TRUE(same_bits(outs[0], outs[i])) << "pool variant " << i;
}

TEST(TrainOps, RmsnormBackwardMatchesRef) {
  std::mt19937 rng(1);
  const int64_t shapes[][2] = {{1, 1}, {3, 7}, {17, 33}, {64, 288}, {5, 1001}};
  for (auto [rows, n] : shapes) {
    SCOPED_TRACE(testing::Message() << rows << "x" << n);
    const Vec x = random_floats(rng, rows * n, -2, 2), w = random_floats(rng, n, 0.5f, 1.5f),
              dy = random_floats(rng, rows * n), dx0 = random_floats(rng, rows * n),
              dw0 = random_floats(rng, n);
    Vec dx_ref = dx0, dw_ref = dw0;
    ref::rmsnorm_backward(dx_ref.data(), dw_ref.data(), dy.data(), x.data(), w.data(), rows, n, 1e-5f);
    std::vector<Vec> dws;
    auto dxs = with_pools([&](ThreadPool* pool) {
      Vec dx = dx0, dw = dw0;
      cpu::rmsnorm_backward(dx.data(), dw.data(), dy.data(), x.data(), w.data(), rows, n, 1e-5f, pool);
      dws.push_back(dw);
      return dx;
    });
    expect_thread_independent(dxs);
    expect_thread_independent(dws);
    EXPECT_TRUE(same_bits(dxs[0], dx_ref));
    EXPECT_TRUE(same_bits(dws[0], dw_ref));
    // null outputs are skipped, the other unchanged
    Vec dw_only = dw0;
    cpu::rmsnorm_backward(nullptr, dw_only.data(), dy.data(), x.data(), w.data(), rows, n, 1e-5f, nullptr);
    EXPECT_TRUE(same_bits(dw_only, dws[0]));
  }
}

TEST(TrainOps, RopeBackwardMatchesRefAndInvertsForward) {
  std::mt19937 rng(2);
  for (RopeLayout layout : {RopeLayout::kPairs, RopeLayout::kHalves}) {
    for (int head_dim : {2, 6, 64, 18}) {
      const int64_t n_tokens = 13;
      const int n_heads = 3;
      std::vector<int32_t> pos(n_tokens);
      for (int64_t t = 0; t < n_tokens; ++t) pos[t] = static_cast<int32_t>((t * 37) % 300);
      Vec inv_freq(head_dim / 2);
      for (int j = 0; j < head_dim / 2; ++j) inv_freq[j] = std::pow(10000.0f, -2.0f * j / head_dim);
      const Vec g0 = random_floats(rng, n_tokens * n_heads * head_dim);
      Vec g_ref = g0, g_cpu = g0;
      ref::rope_backward(g_ref.data(), n_tokens, n_heads, head_dim, pos.data(), inv_freq.data(), layout);
      cpu::rope_backward(g_cpu.data(), n_tokens, n_heads, head_dim, pos.data(), inv_freq.data(), layout);
      EXPECT_LT(normwise_error(g_cpu, g_ref), 1e-6) << head_dim;
      // R(-θ)·R(θ) = I: forward then backward gives back the input
      cpu::rope(g_cpu.data(), n_tokens, n_heads, head_dim, pos.data(), inv_freq.data(), layout);
      EXPECT_LT(normwise_error(g_cpu, g0), 1e-6) << head_dim;
    }
  }
}

TEST(TrainOps, SwigluBackwardMatchesRef) {
  std::mt19937 rng(3);
  for (int64_t n : {1, 7, 1023, 1025, 5000}) {
    SCOPED_TRACE(n);
    Vec gate = random_floats(rng, n, -8, 8);
    gate[0] = n > 1 ? -95.0f : 95.0f;  // beyond exp's range: σ saturates at 0 / 1
    const Vec up = random_floats(rng, n), dy = random_floats(rng, n), dg0 = random_floats(rng, n),
              du0 = random_floats(rng, n);
    Vec dg_ref = dg0, du_ref = du0;
    ref::swiglu_backward(dg_ref.data(), du_ref.data(), dy.data(), gate.data(), up.data(), n);
    std::vector<Vec> dus;
    auto dgs = with_pools([&](ThreadPool* pool) {
      Vec dg = dg0, du = du0;
      cpu::swiglu_backward(dg.data(), du.data(), dy.data(), gate.data(), up.data(), n, pool);
      dus.push_back(du);
      return dg;
    });
    expect_thread_independent(dgs);
    expect_thread_independent(dus);
    EXPECT_LT(normwise_error(dgs[0], dg_ref), 1e-6);
    EXPECT_LT(normwise_error(dus[0], du_ref), 1e-6);
    for (float v : dgs[0]) EXPECT_TRUE(std::isfinite(v));
  }
}

TEST(TrainOps, EmbeddingBackwardIsRefBitForBit) {
  std::mt19937 rng(4);
  const int64_t n_vocab = 11, n_embd = 37, n_tokens = 50;  // repeated tokens sum in order
  std::vector<int32_t> tokens(n_tokens);
  for (auto& t : tokens) t = static_cast<int32_t>(rng() % n_vocab);
  const Vec dout = random_floats(rng, n_tokens * n_embd), d0 = random_floats(rng, n_vocab * n_embd);
  Vec d_ref = d0, d_cpu = d0;
  ref::embedding_backward(d_ref.data(), dout.data(), tokens.data(), n_tokens, n_embd);
  cpu::embedding_backward(d_cpu.data(), dout.data(), tokens.data(), n_tokens, n_embd);
  EXPECT_TRUE(same_bits(d_cpu, d_ref));
}

TEST(TrainOps, CrossEntropyMatchesRef) {
  std::mt19937 rng(5);
  const int64_t shapes[][2] = {{1, 1}, {1, 9}, {7, 33}, {19, 1000}, {4, 8195}};
  for (auto [n_tokens, n_vocab] : shapes) {
    SCOPED_TRACE(testing::Message() << n_tokens << "x" << n_vocab);
    const Vec logits = random_floats(rng, n_tokens * n_vocab, -6, 6), d0 = random_floats(rng, n_tokens * n_vocab);
    std::vector<int32_t> targets(n_tokens);
    for (int64_t t = 0; t < n_tokens; ++t)
      targets[t] = (t % 3 == 2) ? kIgnoreIndex : static_cast<int32_t>(rng() % n_vocab);
    Vec d_ref = d0;
    const float loss_ref = ref::cross_entropy(d_ref.data(), logits.data(), targets.data(), n_tokens, n_vocab, 0.7f);
    std::vector<float> losses;
    auto ds = with_pools([&](ThreadPool* pool) {
      Vec d = d0;
      losses.push_back(cpu::cross_entropy(d.data(), logits.data(), targets.data(), n_tokens, n_vocab, 0.7f, pool));
      return d;
    });
    expect_thread_independent(ds);
    EXPECT_EQ(losses[0], losses[1]);
    EXPECT_EQ(losses[0], losses[2]);
    // One float exp per logit against ref::'s double exps: a few ulps of the loss,
    // and of each gradient element relative to g = 0.7 / n_valid.
    EXPECT_NEAR(losses[0], loss_ref, 4e-6f * std::fabs(loss_ref) + 1e-6f);
    const float g = 0.7f / static_cast<float>(n_tokens - n_tokens / 3);
    for (size_t i = 0; i < d_ref.size(); ++i) ASSERT_NEAR(ds[0][i], d_ref[i], 2e-6f * g + 4e-7f * std::fabs(d0[i])) << i;
    // loss only
    EXPECT_EQ(cpu::cross_entropy(nullptr, logits.data(), targets.data(), n_tokens, n_vocab, 0.7f, nullptr),
              losses[0]);
    // in place: the gradient written over the logits equals the gradient added to zeros
    Vec zeros(logits.size(), 0.0f), in_place = logits;
    cpu::cross_entropy(zeros.data(), logits.data(), targets.data(), n_tokens, n_vocab, 0.7f, nullptr);
    ThreadPool three(3);
    const float loss_ip =
        cpu::cross_entropy_in_place(in_place.data(), targets.data(), n_tokens, n_vocab, 0.7f, &three);
    EXPECT_EQ(loss_ip, losses[0]);
    EXPECT_TRUE(same_bits(in_place, zeros));
  }
}

TEST(TrainOps, CrossEntropyAllIgnored) {
  const Vec logits = {1, 2, 3, 4, 5, 6};
  const std::vector<int32_t> targets = {kIgnoreIndex, kIgnoreIndex};
  Vec d(6, 0.5f), in_place = logits;
  EXPECT_EQ(cpu::cross_entropy(d.data(), logits.data(), targets.data(), 2, 3, 1.0f, nullptr), 0.0f);
  EXPECT_EQ(d, Vec(6, 0.5f));
  EXPECT_EQ(cpu::cross_entropy_in_place(in_place.data(), targets.data(), 2, 3, 1.0f, nullptr), 0.0f);
  EXPECT_EQ(in_place, Vec(6, 0.0f));
}

// Three AdamW steps of `update` (cpu::, on no pool, 1 thread and 3 threads) against
// ref::adamw on the gradients times `scale` (clip_grad_norm's factor): the parameters
// and both moments must have ref::'s bits.
template <class Update>
void expect_adamw_bits(std::mt19937& rng, const AdamWParams& hp, int64_t n, float g_max, float scale,
                       Update update) {
  Vec p_ref = random_floats(rng, n), m_ref(n, 0.0f), v_ref(n, 0.0f);
  Vec p[3] = {p_ref, p_ref, p_ref}, m[3] = {m_ref, m_ref, m_ref}, v[3] = {v_ref, v_ref, v_ref};
  ThreadPool one(1), three(3);
  ThreadPool* pools[3] = {nullptr, &one, &three};
  for (int64_t step = 1; step <= 3; ++step) {
    const Vec grad = random_floats(rng, n, -g_max, g_max);
    Vec scaled = grad;
    if (scale != 1.0f)
      for (float& g : scaled) g *= scale;
    ref::adamw(p_ref.data(), scaled.data(), m_ref.data(), v_ref.data(), n, hp, step);
    for (int i = 0; i < 3; ++i) update(p[i], grad, m[i], v[i], step, pools[i]);
  }
  for (int i = 0; i < 3; ++i) {
    EXPECT_TRUE(same_bits(p[i], p_ref)) << i;
    EXPECT_TRUE(same_bits(m[i], m_ref)) << i;
    EXPECT_TRUE(same_bits(v[i], v_ref)) << i;
  }
}

TEST(TrainOps, AdamwIsRefBitForBit) {
  std::mt19937 rng(6);
  AdamWParams hp;
  hp.lr = 3e-4;
  hp.weight_decay = 0.1;
  for (int64_t n : {1, 5, 100003}) {
    SCOPED_TRACE(n);
    expect_adamw_bits(rng, hp, n, 0.1f, 1.0f,
                      [&](Vec& p, const Vec& g, Vec& m, Vec& v, int64_t step, ThreadPool* pool) {
                        cpu::adamw(p.data(), g.data(), m.data(), v.data(), n, hp, step, pool);
                      });
  }
}

// adamw_step = scale the gradient as clip_grad_norm does, adamw, zero the gradient:
// bit for bit, for a clipping factor below 1 and for none, across thread counts.
TEST(TrainOps, AdamwStepIsClipAdamwAndZeroBitForBit) {
  std::mt19937 rng(16);
  AdamWParams hp;
  hp.lr = 1e-3;
  hp.weight_decay = 0.1;
  for (float scale : {1.0f, 0.37f})
    for (int64_t n : {1, 6, 70001}) {
      SCOPED_TRACE(testing::Message() << "scale " << scale << " n " << n);
      expect_adamw_bits(rng, hp, n, 2.0f, scale,
                        [&](Vec& p, const Vec& grad, Vec& m, Vec& v, int64_t step, ThreadPool* pool) {
                          Vec g = grad;
                          cpu::adamw_step(p.data(), g.data(), m.data(), v.data(), n, hp, step, scale,
                                          pool);
                          EXPECT_EQ(g, Vec(n, 0.0f));
                        });
    }
}

TEST(TrainOps, ClipScaleIsClipGradNormsFactor) {
  EXPECT_EQ(cpu::clip_scale(0.5f, 1.0f), 1.0f);
  EXPECT_EQ(cpu::clip_scale(4.0f, 1.0f), 1.0f / (4.0f + 1e-6f));
  // clip_grad_norm multiplies by exactly that factor
  Vec g = {3.0f, 4.0f};
  const GradSpan span{g.data(), 2};
  const float norm = cpu::clip_grad_norm(&span, 1, 1.0f, nullptr);
  EXPECT_FLOAT_EQ(norm, 5.0f);
  EXPECT_EQ(g[0], 3.0f * cpu::clip_scale(norm, 1.0f));
  EXPECT_EQ(g[1], 4.0f * cpu::clip_scale(norm, 1.0f));
}

TEST(TrainOps, GradNormAndClipMatchRef) {
  std::mt19937 rng(7);
  // spans of odd sizes, one over two norm chunks
  const int64_t sizes[] = {1, 3, cpu::kNormChunk * 2 + 17, 1000, 7};
  for (float max_norm : {0.5f, 1e6f}) {
    std::vector<Vec> base;
    for (int64_t n : sizes) base.push_back(random_floats(rng, n, -0.05f, 0.05f));
    auto spans_of = [](std::vector<Vec>& vs) {
      std::vector<GradSpan> s;
      for (Vec& v : vs) s.push_back({v.data(), static_cast<int64_t>(v.size())});
      return s;
    };
    std::vector<Vec> ref_g = base;
    auto ref_spans = spans_of(ref_g);
    const float norm_ref = ref::clip_grad_norm(ref_spans.data(), 5, max_norm);
    EXPECT_NEAR(cpu::grad_norm(ref_spans.data(), 5, nullptr), std::min(norm_ref, max_norm), 1e-6 * norm_ref);
    std::vector<float> norms;
    std::vector<std::vector<Vec>> outs;
    ThreadPool one(1), three(3);
    for (ThreadPool* pool : {static_cast<ThreadPool*>(nullptr), &one, &three}) {
      std::vector<Vec> g = base;
      auto spans = spans_of(g);
      norms.push_back(cpu::clip_grad_norm(spans.data(), 5, max_norm, pool));
      outs.push_back(g);
    }
    EXPECT_EQ(norms[0], norms[1]);
    EXPECT_EQ(norms[0], norms[2]);
    EXPECT_NEAR(norms[0], norm_ref, 1e-6 * norm_ref);
    for (int i = 0; i < 3; ++i)
      for (size_t s = 0; s < base.size(); ++s) {
        EXPECT_TRUE(same_bits(outs[i][s], outs[0][s]));
        EXPECT_LT(normwise_error(outs[i][s], ref_g[s]), 1e-6);
      }
  }
}

}  // namespace
}  // namespace hanul
