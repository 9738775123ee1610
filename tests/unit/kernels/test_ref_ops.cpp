// The reference ops on tiny cases worked out by hand or by a direct formula.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "hanul/kernels/ref/ops.h"
#include "hanul/tensor/half.h"

namespace hanul {
namespace {

TEST(RefOps, MatmulByHand) {
  // x = [[1, 2, 3], [4, 5, 6]], W = [[1, 0, -1], [2, 1, 0]]
  const float x[] = {1, 2, 3, 4, 5, 6};
  const float w[] = {1, 0, -1, 2, 1, 0};
  const float bias[] = {10, 20};
  float y[4];
  ref::matmul(x, 2, 3, w, DType::F32, 2, nullptr, y, nullptr);
  EXPECT_EQ(y[0], -2);
  EXPECT_EQ(y[1], 4);
  EXPECT_EQ(y[2], -2);
  EXPECT_EQ(y[3], 13);
  ref::matmul(x, 2, 3, w, DType::F32, 2, bias, y, nullptr);
  EXPECT_EQ(y[1], 24);
  // The same weights as f16 (all exactly representable) give the same result.
  uint16_t wh[6];
  for (int i = 0; i < 6; ++i) wh[i] = f32_to_fp16(w[i]);
  ref::matmul(x, 2, 3, wh, DType::F16, 2, nullptr, y, nullptr);
  EXPECT_EQ(y[3], 13);
}

TEST(RefOps, RmsNormByHand) {
  // mean(x²) = (9 + 16) / 2 = 12.5; 1/sqrt(12.5) = 0.28284271
  const float x[] = {3, 4}, w[] = {1, 2};
  float out[2];
  ref::rmsnorm(out, x, w, 1, 2, 0.0f);
  EXPECT_NEAR(out[0], 3 * 0.28284271f, 1e-6);
  EXPECT_NEAR(out[1], 8 * 0.28284271f, 1e-6);
}

TEST(RefOps, SoftmaxByHandAndSumsToOne) {
  float x[] = {1, 2, 3};
  ref::softmax(x, 1, 3);
  const double z = std::exp(1.0) + std::exp(2.0) + std::exp(3.0);
  EXPECT_NEAR(x[0], std::exp(1.0) / z, 1e-7);
  EXPECT_NEAR(x[2], std::exp(3.0) / z, 1e-7);
  // Large inputs do not overflow (the max is subtracted first), rows sum to 1.
  std::mt19937 rng(1);
  std::uniform_real_distribution<float> dist(-100, 1000);
  std::vector<float> rows(5 * 37);
  for (auto& v : rows) v = dist(rng);
  ref::softmax(rows.data(), 5, 37);
  for (int r = 0; r < 5; ++r) {
    double sum = 0;
    for (int i = 0; i < 37; ++i) sum += rows[r * 37 + i];
    EXPECT_NEAR(sum, 1.0, 1e-6);
  }
}

TEST(RefOps, SwigluByHand) {
  const float g[] = {0, 1, -1}, u[] = {5, 2, 3};
  float out[3];
  ref::swiglu(out, g, u, 3);
  EXPECT_EQ(out[0], 0.0f);
  EXPECT_NEAR(out[1], 2.0 / (1.0 + std::exp(-1.0)), 1e-6);
  EXPECT_NEAR(out[2], -3.0 / (1.0 + std::exp(1.0)), 1e-6);
}

TEST(RefOps, RopeMatchesRotationFormula) {
  // One token at position 3, one head of 4 dims, inv_freq {1, 0.01}.
  const float x0[] = {1, 2, 3, 4};
  const float inv_freq[] = {1.0f, 0.01f};
  const int32_t pos[] = {3};
  const double t0 = 3.0, t1 = 0.03;
  {
    // kHalves pairs (0, 2) and (1, 3).
    float x[4] = {x0[0], x0[1], x0[2], x0[3]};
    ref::rope(x, 1, 1, 4, pos, inv_freq, RopeLayout::kHalves);
    EXPECT_NEAR(x[0], 1 * std::cos(t0) - 3 * std::sin(t0), 1e-6);
    EXPECT_NEAR(x[2], 1 * std::sin(t0) + 3 * std::cos(t0), 1e-6);
    EXPECT_NEAR(x[1], 2 * std::cos(t1) - 4 * std::sin(t1), 1e-6);
    EXPECT_NEAR(x[3], 2 * std::sin(t1) + 4 * std::cos(t1), 1e-6);
  }
  {
    // kPairs pairs (0, 1) and (2, 3).
    float x[4] = {x0[0], x0[1], x0[2], x0[3]};
    ref::rope(x, 1, 1, 4, pos, inv_freq, RopeLayout::kPairs);
    EXPECT_NEAR(x[0], 1 * std::cos(t0) - 2 * std::sin(t0), 1e-6);
    EXPECT_NEAR(x[1], 1 * std::sin(t0) + 2 * std::cos(t0), 1e-6);
    EXPECT_NEAR(x[2], 3 * std::cos(t1) - 4 * std::sin(t1), 1e-6);
    EXPECT_NEAR(x[3], 3 * std::sin(t1) + 4 * std::cos(t1), 1e-6);
  }
  // Position 0 is the identity.
  float x[4] = {x0[0], x0[1], x0[2], x0[3]};
  const int32_t zero[] = {0};
  ref::rope(x, 1, 1, 4, zero, inv_freq, RopeLayout::kPairs);
  for (int i = 0; i < 4; ++i) EXPECT_EQ(x[i], x0[i]);
}

TEST(RefOps, AttentionByHand) {
  // One head of one dim, scale 1: q = 1, keys 0 and ln 3, values 10 and 20.
  // Token 0 sees key 0 only -> 10; token 1 weighs them 1 : 3 -> (10 + 60) / 4.
  const float q[] = {1, 1}, k[] = {0, std::log(3.0f)}, v[] = {10, 20};
  float out[2];
  ref::attention(out, q, 2, k, v, 2, 1, 1, 1, 0, 1.0f, nullptr);
  EXPECT_NEAR(out[0], 10.0f, 1e-6);
  EXPECT_NEAR(out[1], 17.5f, 1e-5);
}

// Against the textbook form: a full score matrix with an explicit causal mask of
// -inf, a softmax over each row, and the product with V (all in double).
TEST(RefOps, AttentionMatchesMaskedMatrixForm) {
  std::mt19937 rng(2);
  std::uniform_real_distribution<float> dist(-1, 1);
  const int n_head = 4, n_head_kv = 2, hd = 5;
  const int64_t n_tokens = 3, pos0 = 2, n_kv = 6;
  std::vector<float> q(n_tokens * n_head * hd), k(n_kv * n_head_kv * hd), v(k.size());
  for (auto* t : {&q, &k, &v})
    for (auto& e : *t) e = dist(rng);
  const float scale = 0.7f;
  std::vector<float> out(q.size());
  ref::attention(out.data(), q.data(), n_tokens, k.data(), v.data(), n_kv, n_head, n_head_kv, hd,
                 pos0, scale, nullptr);
  for (int h = 0; h < n_head; ++h) {
    const int hk = h / (n_head / n_head_kv);
    for (int64_t i = 0; i < n_tokens; ++i) {
      std::vector<double> s(n_kv);
      for (int64_t j = 0; j < n_kv; ++j) {
        const bool masked = j > pos0 + i;
        double dot = 0;
        for (int d = 0; d < hd; ++d) dot += q[(i * n_head + h) * hd + d] * k[(j * n_head_kv + hk) * hd + d];
        s[j] = masked ? -INFINITY : dot * scale;
      }
      double z = 0;
      for (auto& e : s) z += (e = std::exp(e));
      for (int d = 0; d < hd; ++d) {
        double o = 0;
        for (int64_t j = 0; j < n_kv; ++j) o += s[j] / z * v[(j * n_head_kv + hk) * hd + d];
        EXPECT_NEAR(out[(i * n_head + h) * hd + d], o, 1e-6);
      }
    }
  }
}

}  // namespace
}  // namespace hanul
