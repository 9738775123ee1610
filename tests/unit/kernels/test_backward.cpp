// The backward ops of kernels/ref/ops_backward.h against central finite
// differences of their forward, and the cpu:: twins against ref::.
//
// The finite differences run on a forward written again here in double (templated
// on the scalar type), so the check measures only the float32 backward: with the
// loss L = Σ forward(x)·R for a random R (so that the backward's input is dout = R),
// (L(x+h) - L(x-h)) / 2h in double with h = 1e-5 has truncation error ~h²·|L'''| ~
// 1e-10 and cancellation error ~1e-16·|L|/h ~ 1e-10, far below the float32
// backward's own rounding (~k·2^-24 relative for sums of k terms, k <= 100 here).
// Every gradient must agree with its finite difference to 1e-5 of the tensor's
// largest gradient: the normwise relative error, the only one defined at zeros.
#include <gtest/gtest.h>

#include "kernel_test_util.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "hanul/base/thread_pool.h"
#include "hanul/kernels/cpu/ops.h"
#include "hanul/kernels/cpu/ops_backward.h"
#include "hanul/kernels/ref/ops.h"
#include "hanul/kernels/ref/ops_backward.h"

namespace hanul {
namespace {

using Vec = std::vector<float>;
using DVec = std::vector<double>;

constexpr double kStep = 1e-5;
constexpr double kTol = 1e-5;


DVec to_double(const Vec& v) { return DVec(v.begin(), v.end()); }

double dot(const DVec& a, const Vec& b) {
  double s = 0.0;
  for (size_t i = 0; i < a.size(); ++i) s += a[i] * b[i];
  return s;
}

// Checks grads[t] (the float backward) against the central difference of loss()
// with respect to every element of inputs[t]. loss() reads the double inputs.
void check_fd(const std::string& what, std::vector<DVec>& inputs, const std::vector<Vec>& grads,
              const std::function<double()>& loss) {
  ASSERT_EQ(inputs.size(), grads.size());
  for (size_t t = 0; t < inputs.size(); ++t) {
    SCOPED_TRACE(what + " input " + std::to_string(t));
    ASSERT_EQ(inputs[t].size(), grads[t].size());
    DVec fd(inputs[t].size());
    double max_g = 0.0;
    for (size_t i = 0; i < inputs[t].size(); ++i) {
      const double x0 = inputs[t][i];
      inputs[t][i] = x0 + kStep;
      const double lp = loss();
      inputs[t][i] = x0 - kStep;
      const double lm = loss();
      inputs[t][i] = x0;
      fd[i] = (lp - lm) / (2 * kStep);
      max_g = std::max(max_g, std::fabs(fd[i]));
    }
    ASSERT_GT(max_g, 0.0) << "the loss does not depend on this input: the check would be empty";
    double max_err = 0.0;
    for (size_t i = 0; i < fd.size(); ++i)
      max_err = std::max(max_err, std::fabs(grads[t][i] - fd[i]));
    std::printf("  %s input %zu: max |grad - fd| / max |fd| = %.2e\n", what.c_str(), t,
                max_err / max_g);
    EXPECT_LE(max_err / max_g, kTol) << "max |grad - fd| = " << max_err << ", max |fd| = " << max_g;
  }
}

// --- the forwards in double ---------------------------------------------------------

template <class T>
std::vector<T> rmsnorm_fwd(const std::vector<T>& x, const std::vector<T>& w, int64_t rows,
                           int64_t n, double eps) {
  std::vector<T> out(x.size());
  for (int64_t r = 0; r < rows; ++r) {
    T ss = 0;
    for (int64_t i = 0; i < n; ++i) ss += x[r * n + i] * x[r * n + i];
    const T s = 1 / std::sqrt(ss / n + eps);
    for (int64_t i = 0; i < n; ++i) out[r * n + i] = x[r * n + i] * s * w[i];
  }
  return out;
}

// The angle is the kernel's float32 angle; cos/sin of it in double.
DVec rope_fwd(DVec x, int64_t n_tokens, int n_heads, int head_dim, const int32_t* pos,
              const float* inv_freq, RopeLayout layout) {
  const int half = head_dim / 2;
  for (int64_t t = 0; t < n_tokens; ++t)
    for (int h = 0; h < n_heads; ++h)
      for (int j = 0; j < half; ++j) {
        const double angle = static_cast<float>(pos[t]) * inv_freq[j];
        const int ia = layout == RopeLayout::kHalves ? j : 2 * j;
        const int ib = layout == RopeLayout::kHalves ? j + half : 2 * j + 1;
        double* xh = x.data() + (t * n_heads + h) * head_dim;
        const double a = xh[ia], b = xh[ib];
        xh[ia] = a * std::cos(angle) - b * std::sin(angle);
        xh[ib] = a * std::sin(angle) + b * std::cos(angle);
      }
  return x;
}

DVec attention_fwd(const DVec& q, int64_t n_tokens, const DVec& k, const DVec& v, int64_t n_kv,
                   int n_head, int n_head_kv, int hd, int64_t pos0, double scale) {
  DVec out(q.size(), 0.0), p(static_cast<size_t>(n_kv));
  const int group = n_head / n_head_kv;
  for (int64_t i = 0; i < n_tokens; ++i)
    for (int h = 0; h < n_head; ++h) {
      const int hk = h / group;
      const int64_t nv = pos0 + i + 1;
      double max = -INFINITY, sum = 0.0;
      for (int64_t j = 0; j < nv; ++j) {
        double s = 0.0;
        for (int d = 0; d < hd; ++d)
          s += q[(i * n_head + h) * hd + d] * k[(j * n_head_kv + hk) * hd + d];
        p[j] = s * scale;
        max = std::max(max, p[j]);
      }
      for (int64_t j = 0; j < nv; ++j) sum += (p[j] = std::exp(p[j] - max));
      for (int64_t j = 0; j < nv; ++j)
        for (int d = 0; d < hd; ++d)
          out[(i * n_head + h) * hd + d] += p[j] / sum * v[(j * n_head_kv + hk) * hd + d];
    }
  return out;
}

double cross_entropy_fwd(const DVec& logits, const std::vector<int32_t>& targets, int64_t n_vocab) {
  double total = 0.0;
  int n_valid = 0;
  for (size_t t = 0; t < targets.size(); ++t) {
    if (targets[t] == kIgnoreIndex) continue;
    ++n_valid;
    const double* l = logits.data() + t * n_vocab;
    const double max = *std::max_element(l, l + n_vocab);
    double sum = 0.0;
    for (int64_t i = 0; i < n_vocab; ++i) sum += std::exp(l[i] - max);
    total += max + std::log(sum) - l[targets[t]];
  }
  return n_valid ? total / n_valid : 0.0;
}

// --- finite-difference checks of ref:: --------------------------------------------

TEST(BackwardFd, Embedding) {
  std::mt19937 rng(1);
  const int64_t n_vocab = 11, n_embd = 7;
  const std::vector<int32_t> tokens = {3, 0, 10, 3, 5, 3};  // 3 repeats: its rows sum
  const int64_t n_tokens = static_cast<int64_t>(tokens.size());
  Vec emb = random_floats(rng, n_vocab * n_embd), dout = random_floats(rng, n_tokens * n_embd);
  Vec out(static_cast<size_t>(n_tokens * n_embd));
  ref::embedding(out.data(), tokens.data(), n_tokens, emb.data(), n_embd);
  for (int64_t t = 0; t < n_tokens; ++t)
    EXPECT_EQ(0, std::memcmp(&out[t * n_embd], &emb[tokens[t] * n_embd], n_embd * sizeof(float)));
  Vec demb(emb.size(), 0.0f);
  ref::embedding_backward(demb.data(), dout.data(), tokens.data(), n_tokens, n_embd);
  std::vector<DVec> in = {to_double(emb)};
  check_fd("embedding", in, {demb}, [&] {
    double l = 0.0;
    for (int64_t t = 0; t < n_tokens; ++t)
      for (int64_t i = 0; i < n_embd; ++i)
        l += in[0][tokens[t] * n_embd + i] * dout[t * n_embd + i];
    return l;
  });
}

TEST(BackwardFd, Rmsnorm) {
  std::mt19937 rng(2);
  const int64_t rows = 5, n = 37;
  const float eps = 1e-5f;
  Vec x = random_floats(rng, rows * n), w = random_floats(rng, n, 0.5f, 1.5f);
  Vec dout = random_floats(rng, rows * n);
  Vec dx(x.size(), 0.25f), dw(w.size(), -0.5f);  // non-zero: the backward must add, not write
  ref::rmsnorm_backward(dx.data(), dw.data(), dout.data(), x.data(), w.data(), rows, n, eps);
  for (auto& g : dx) g -= 0.25f;
  for (auto& g : dw) g += 0.5f;
  std::vector<DVec> in = {to_double(x), to_double(w)};
  check_fd("rmsnorm", in, {dx, dw},
           [&] { return dot(rmsnorm_fwd(in[0], in[1], rows, n, eps), dout); });
  // The float forward agrees with the double one it is differentiated against.
  Vec y(x.size());
  ref::rmsnorm(y.data(), x.data(), w.data(), rows, n, eps);
  const DVec yd = rmsnorm_fwd(in[0], in[1], rows, n, eps);
  for (size_t i = 0; i < y.size(); ++i) EXPECT_NEAR(y[i], yd[i], 1e-5);
}

TEST(BackwardFd, RopeBothLayouts) {
  std::mt19937 rng(3);
  const int64_t n_tokens = 4;
  const int n_heads = 3, head_dim = 10;
  const std::vector<int32_t> pos = {0, 5, 17, 1000};
  Vec inv_freq(head_dim / 2);
  for (int j = 0; j < head_dim / 2; ++j) inv_freq[j] = std::pow(10000.0f, -2.0f * j / head_dim);
  for (RopeLayout layout : {RopeLayout::kHalves, RopeLayout::kPairs}) {
    SCOPED_TRACE(layout == RopeLayout::kHalves ? "halves" : "pairs");
    Vec x = random_floats(rng, n_tokens * n_heads * head_dim), dout = random_floats(rng, x.size());
    Vec dx = dout;
    ref::rope_backward(dx.data(), n_tokens, n_heads, head_dim, pos.data(), inv_freq.data(), layout);
    std::vector<DVec> in = {to_double(x)};
    check_fd("rope", in, {dx}, [&] {
      return dot(rope_fwd(in[0], n_tokens, n_heads, head_dim, pos.data(), inv_freq.data(), layout),
                 dout);
    });
    // Orthogonal: backward(forward(x)) = x.
    Vec y = x;
    ref::rope(y.data(), n_tokens, n_heads, head_dim, pos.data(), inv_freq.data(), layout);
    ref::rope_backward(y.data(), n_tokens, n_heads, head_dim, pos.data(), inv_freq.data(), layout);
    for (size_t i = 0; i < x.size(); ++i) EXPECT_NEAR(y[i], x[i], 1e-6);
  }
}

TEST(BackwardFd, Swiglu) {
  std::mt19937 rng(4);
  const int64_t n = 53;
  Vec gate = random_floats(rng, n, -6.0f, 6.0f), up = random_floats(rng, n),
      dout = random_floats(rng, n);
  Vec dgate(n, 0.0f), dup(n, 0.0f);
  ref::swiglu_backward(dgate.data(), dup.data(), dout.data(), gate.data(), up.data(), n);
  std::vector<DVec> in = {to_double(gate), to_double(up)};
  check_fd("swiglu", in, {dgate, dup}, [&] {
    double l = 0.0;
    for (int64_t i = 0; i < n; ++i) l += in[0][i] / (1 + std::exp(-in[0][i])) * in[1][i] * dout[i];
    return l;
  });
}

TEST(BackwardFd, Matmul) {
  std::mt19937 rng(5);
  const int64_t m = 7, k = 13, n = 9;
  Vec x = random_floats(rng, m * k), w = random_floats(rng, n * k), b = random_floats(rng, n);
  Vec dy = random_floats(rng, m * n);
  Vec dx(x.size(), 0.0f), dw(w.size(), 0.0f), db(b.size(), 0.0f);
  ThreadPool pool(3);
  ref::matmul_backward(dx.data(), dw.data(), db.data(), dy.data(), x.data(), w.data(), m, k, n,
                       &pool);
  std::vector<DVec> in = {to_double(x), to_double(w), to_double(b)};
  check_fd("matmul", in, {dx, dw, db}, [&] {
    double l = 0.0;
    for (int64_t i = 0; i < m; ++i)
      for (int64_t j = 0; j < n; ++j) {
        double y = in[2][j];
        for (int64_t c = 0; c < k; ++c) y += in[0][i * k + c] * in[1][j * k + c];
        l += y * dy[i * n + j];
      }
    return l;
  });
}

TEST(BackwardFd, AttentionGqaWithCache) {
  std::mt19937 rng(6);
  // 5 new tokens after 3 cached ones; 6 query heads share 2 kv heads.
  const int64_t n_tokens = 5, pos0 = 3, n_kv = pos0 + n_tokens;
  const int n_head = 6, n_head_kv = 2, hd = 6;
  const float scale = 1.0f / std::sqrt(static_cast<float>(hd));
  Vec q = random_floats(rng, n_tokens * n_head * hd, -2, 2),
      k = random_floats(rng, n_kv * n_head_kv * hd, -2, 2);
  Vec v = random_floats(rng, n_kv * n_head_kv * hd), dout = random_floats(rng, q.size());
  Vec dq(q.size(), 0.0f), dk(k.size(), 0.0f), dv(v.size(), 0.0f);
  ref::attention_backward(dq.data(), dk.data(), dv.data(), dout.data(), q.data(), n_tokens,
                          k.data(), v.data(), n_kv, n_head, n_head_kv, hd, pos0, scale, nullptr);
  std::vector<DVec> in = {to_double(q), to_double(k), to_double(v)};
  check_fd("attention", in, {dq, dk, dv}, [&] {
    return dot(
        attention_fwd(in[0], n_tokens, in[1], in[2], n_kv, n_head, n_head_kv, hd, pos0, scale),
        dout);
  });
}

TEST(BackwardFd, CrossEntropyWithIgnoredTargets) {
  std::mt19937 rng(7);
  const int64_t n_vocab = 29;
  const std::vector<int32_t> targets = {4, kIgnoreIndex, 0, 28, kIgnoreIndex, 4};
  const int64_t n_tokens = static_cast<int64_t>(targets.size());
  Vec logits = random_floats(rng, n_tokens * n_vocab, -4, 4);
  Vec dlogits(logits.size(), 0.0f);
  const float dloss = 0.75f;
  const float loss =
      ref::cross_entropy(dlogits.data(), logits.data(), targets.data(), n_tokens, n_vocab, dloss);
  std::vector<DVec> in = {to_double(logits)};
  EXPECT_NEAR(loss, cross_entropy_fwd(in[0], targets, n_vocab), 1e-6);
  check_fd("cross_entropy", in, {dlogits},
           [&] { return dloss * cross_entropy_fwd(in[0], targets, n_vocab); });
  // Masked tokens get exactly zero gradient; all masked gives loss 0 and no gradient.
  for (int64_t i = 0; i < n_vocab; ++i) EXPECT_EQ(dlogits[1 * n_vocab + i], 0.0f);
  const std::vector<int32_t> none(static_cast<size_t>(n_tokens), kIgnoreIndex);
  Vec d2(logits.size(), 0.0f);
  EXPECT_EQ(ref::cross_entropy(d2.data(), logits.data(), none.data(), n_tokens, n_vocab, 1.0f),
            0.0f);
  EXPECT_TRUE(std::all_of(d2.begin(), d2.end(), [](float g) { return g == 0.0f; }));
}

// --- AdamW and clipping ------------------------------------------------------------

TEST(AdamW, FirstStepIsSignedLrAndDecayIsDecoupled) {
  // Step 1 from m = v = 0: m̂ = g, v̂ = g², so the update is lr·g / (|g| + eps) ≈ lr·sign(g),
  // whatever the gradient's scale (Kingma & Ba 2015, §2.1).
  AdamWParams hp;
  hp.lr = 0.01;
  hp.weight_decay = 0.0;
  Vec p = {1.0f, -2.0f, 0.5f}, g = {1e-3f, -50.0f, 0.0f}, m(3, 0.0f), v(3, 0.0f);
  ref::adamw(p.data(), g.data(), m.data(), v.data(), 3, hp, 1);
  EXPECT_NEAR(p[0], 1.0f - 0.01f, 1e-6);
  EXPECT_NEAR(p[1], -2.0f + 0.01f, 1e-6);
  EXPECT_EQ(p[2], 0.5f);
  // Decoupled decay: with g = 0 the weight shrinks by (1 - lr·wd) and nothing else.
  hp.weight_decay = 0.1;
  Vec p2 = {3.0f}, g2 = {0.0f}, m2 = {0.0f}, v2 = {0.0f};
  ref::adamw(p2.data(), g2.data(), m2.data(), v2.data(), 1, hp, 1);
  EXPECT_FLOAT_EQ(p2[0], 3.0f * (1.0f - 0.001f));
}

TEST(AdamW, ManyStepsMatchTheFormulaInDouble) {
  std::mt19937 rng(8);
  AdamWParams hp;
  hp.lr = 3e-3;
  hp.weight_decay = 0.1;
  const int64_t n = 31;
  Vec p = random_floats(rng, n), m(n, 0.0f), v(n, 0.0f);
  DVec pd = to_double(p), md(n, 0.0), vd(n, 0.0);
  for (int64_t step = 1; step <= 20; ++step) {
    Vec g = random_floats(rng, n);
    ref::adamw(p.data(), g.data(), m.data(), v.data(), n, hp, step);
    for (int64_t i = 0; i < n; ++i) {
      pd[i] *= 1 - hp.lr * hp.weight_decay;
      md[i] = hp.beta1 * md[i] + (1 - hp.beta1) * g[i];
      vd[i] = hp.beta2 * vd[i] + (1 - hp.beta2) * g[i] * g[i];
      const double mh = md[i] / (1 - std::pow(hp.beta1, step)),
                   vh = vd[i] / (1 - std::pow(hp.beta2, step));
      pd[i] -= hp.lr * mh / (std::sqrt(vh) + hp.eps);
    }
  }
  for (int64_t i = 0; i < n; ++i) EXPECT_NEAR(p[i], pd[i], 1e-6) << i;
}

TEST(ClipGradNorm, ScalesToMaxNormOnlyWhenAbove) {
  Vec a = {3.0f, 0.0f}, b = {4.0f};  // global norm 5
  std::vector<GradSpan> grads = {{a.data(), 2}, {b.data(), 1}};
  EXPECT_FLOAT_EQ(ref::grad_norm(grads.data(), 2), 5.0f);
  EXPECT_FLOAT_EQ(ref::clip_grad_norm(grads.data(), 2, 10.0f), 5.0f);
  EXPECT_EQ(a[0], 3.0f);  // below max_norm: untouched
  EXPECT_FLOAT_EQ(ref::clip_grad_norm(grads.data(), 2, 1.0f), 5.0f);
  EXPECT_NEAR(ref::grad_norm(grads.data(), 2), 1.0f, 1e-6);
  EXPECT_NEAR(a[0], 0.6f, 1e-6);
  EXPECT_NEAR(b[0], 0.8f, 1e-6);
}

// --- cpu:: against ref::, and thread-count invariance --------------------------------

std::vector<cpu::Isa> isas() {
  std::vector<cpu::Isa> out;
  for (int i = 0; i <= static_cast<int>(cpu::detected_isa()); ++i)
    out.push_back(static_cast<cpu::Isa>(i));
  return out;
}

// Two float32 sums of K products each differ from the exact sum by at most
// γ_K·Σ|terms| (Higham §3.1), so from each other by 2·γ_K·Σ|terms|; the Σ|terms| of
// every output is the same backward run on absolute values.
TEST(BackwardCpu, MatmulMatchesRefAndThreadCount) {
  std::mt19937 rng(9);
  ThreadPool pool1(1), pool3(3);
  for (cpu::Isa isa : isas()) {
    SCOPED_TRACE(cpu::isa_name(isa));
    cpu::set_max_isa(isa);
    for (auto [m, k, n] :
         {std::tuple<int64_t, int64_t, int64_t>{1, 1, 1}, {37, 53, 19}, {70, 33, 129},
          // past the GEMM's blocks: 2 k blocks of dW (m = 300), 2 column blocks of dx
          // and dW (k = 390 > kNc), row blocks of 120 and edge tiles
          {300, 390, 131}}) {
      SCOPED_TRACE(std::to_string(m) + "x" + std::to_string(k) + "x" + std::to_string(n));
      Vec x = random_floats(rng, m * k), w = random_floats(rng, n * k),
          dy = random_floats(rng, m * n);
      Vec init_x = random_floats(rng, m * k), init_w = random_floats(rng, n * k),
          init_b = random_floats(rng, n);
      auto run = [&](auto fn, ThreadPool* pool, const Vec& xs, const Vec& ws, const Vec& dys,
                     bool zero) {
        std::vector<Vec> g = {zero ? Vec(x.size(), 0.f) : init_x,
                              zero ? Vec(w.size(), 0.f) : init_w, zero ? Vec(n, 0.f) : init_b};
        fn(g[0].data(), g[1].data(), g[2].data(), dys.data(), xs.data(), ws.data(), m, k, n, pool);
        return g;
      };
      const auto want = run(ref::matmul_backward, nullptr, x, w, dy, false);
      const auto got1 = run(cpu::matmul_backward, &pool1, x, w, dy, false);
      const auto got3 = run(cpu::matmul_backward, &pool3, x, w, dy, false);
      auto absv = [](Vec v) {
        for (auto& e : v) e = std::fabs(e);
        return v;
      };
      const auto mag = run(ref::matmul_backward, nullptr, absv(x), absv(w), absv(dy), true);
      const int64_t big_k = std::max(m, n);
      const double gamma = 2.0 * big_k * std::ldexp(1.0, -24);
      for (int t = 0; t < 3; ++t) {
        ASSERT_EQ(0, std::memcmp(got1[t].data(), got3[t].data(), got1[t].size() * sizeof(float)))
            << "cpu::matmul_backward depends on the thread count, output " << t;
        for (size_t i = 0; i < want[t].size(); ++i)
          ASSERT_NEAR(got1[t][i], want[t][i],
                      2 * gamma * mag[t][i] + 1e-6 * std::fabs(want[t][i]) + 1e-30)
              << "output " << t << " element " << i;
      }
    }
  }
  cpu::set_max_isa(cpu::Isa::kAvx512);
}

TEST(BackwardCpu, AttentionMatchesRefAndThreadCount) {
  std::mt19937 rng(10);
  ThreadPool pool1(1), pool3(3);
  struct Shape {
    int64_t n_tokens, pos0;
    int n_head, n_head_kv, hd;
  };
  for (cpu::Isa isa : isas()) {
    SCOPED_TRACE(cpu::isa_name(isa));
    cpu::set_max_isa(isa);
    for (Shape s : {Shape{1, 0, 1, 1, 2}, Shape{9, 0, 4, 4, 6}, Shape{13, 6, 6, 2, 18},
                    Shape{21, 3, 8, 1, 34}, Shape{70, 5, 6, 2, 7}, Shape{130, 0, 2, 1, 48}}) {
      SCOPED_TRACE(std::to_string(s.n_tokens) + " tokens, " + std::to_string(s.n_head) + "/" +
                   std::to_string(s.n_head_kv) + " heads, hd " + std::to_string(s.hd));
      const int64_t n_kv = s.pos0 + s.n_tokens;
      const float scale = 1.0f / std::sqrt(static_cast<float>(s.hd));
      Vec q = random_floats(rng, s.n_tokens * s.n_head * s.hd, -2, 2);
      Vec k = random_floats(rng, n_kv * s.n_head_kv * s.hd, -2, 2),
          v = random_floats(rng, k.size());
      Vec dout = random_floats(rng, q.size());
      auto run = [&](auto fn, ThreadPool* pool) {
        std::vector<Vec> g = {Vec(q.size(), 0.5f), Vec(k.size(), 0.5f), Vec(v.size(), 0.5f)};
        fn(g[0].data(), g[1].data(), g[2].data(), dout.data(), q.data(), s.n_tokens, k.data(),
           v.data(), n_kv, s.n_head, s.n_head_kv, s.hd, s.pos0, scale, pool);
        return g;
      };
      const auto want = run(ref::attention_backward, nullptr);
      const auto got1 = run(cpu::attention_backward, &pool1);
      const auto got3 = run(cpu::attention_backward, &pool3);
      for (int t = 0; t < 3; ++t) {
        ASSERT_EQ(0, std::memcmp(got1[t].data(), got3[t].data(), got1[t].size() * sizeof(float)))
            << "cpu::attention_backward depends on the thread count, output " << t;
        // Both are float32 evaluations of the same sums (lengths <= n_kv·group·hd, all
        // of size O(1) here); 1e-5 of the largest gradient is ~100× their rounding.
        double max_g = 0.0, max_err = 0.0;
        for (size_t i = 0; i < want[t].size(); ++i) {
          max_g = std::max(max_g, std::fabs(want[t][i] - 0.5));
          max_err = std::max(max_err, static_cast<double>(std::fabs(got1[t][i] - want[t][i])));
        }
        EXPECT_LE(max_err, 1e-5 * max_g) << "output " << t;
      }
    }
  }
  cpu::set_max_isa(cpu::Isa::kAvx512);
}

TEST(BackwardRef, MatmulIsThreadCountInvariant) {
  std::mt19937 rng(11);
  const int64_t m = 23, k = 17, n = 41;
  Vec x = random_floats(rng, m * k), w = random_floats(rng, n * k), dy = random_floats(rng, m * n);
  ThreadPool pool3(3);
  Vec a(x.size()), b(x.size()), wa(w.size()), wb(w.size());
  ref::matmul_backward(a.data(), wa.data(), nullptr, dy.data(), x.data(), w.data(), m, k, n,
                       nullptr);
  ref::matmul_backward(b.data(), wb.data(), nullptr, dy.data(), x.data(), w.data(), m, k, n,
                       &pool3);
  EXPECT_EQ(a, b);
  EXPECT_EQ(wa, wb);
}

}  // namespace
}  // namespace hanul
