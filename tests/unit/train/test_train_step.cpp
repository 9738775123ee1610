#include "hanul/train/train_step.h"

#include "random_ids.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <numeric>

#include "hanul/base/thread_pool.h"
#include "hanul/model/llama.h"

namespace hanul {
namespace {

// The shape of tests/reference/check_train_step.py's model.
ModelConfig tiny(bool tied) {
  ModelConfig c;
  c.n_vocab = 97;
  c.n_embd = 64;
  c.n_layer = 2;
  c.n_head = 4;
  c.n_head_kv = 2;
  c.head_dim = 16;
  c.n_ff = 96;
  c.n_ctx_train = 64;
  c.rms_eps = 1e-6f;
  c.tie_embeddings = tied;
  return c;
}

using testing::random_ids;

TrainableModel make(bool tied, uint64_t seed = 7) {
  auto m = TrainableModel::init_random(tiny(tied), seed);
  EXPECT_TRUE(m.ok()) << m.message();
  return std::move(*m);
}

TEST(TrainStep, InitIsSeededWithNormsAtOne) {
  TrainableModel a = make(false, 1), b = make(false, 1), c = make(false, 2);
  ASSERT_EQ(a.params().size(), b.params().size());
  // token_embd + 9 per layer + output_norm + output.
  EXPECT_EQ(a.params().size(), 1u + 2u * 9u + 2u);
  EXPECT_EQ(make(true).params().size(), 1u + 2u * 9u + 1u);  // tied: no output.weight
  for (size_t i = 0; i < a.params().size(); ++i) EXPECT_EQ(a.params()[i].value, b.params()[i].value);
  EXPECT_NE(a.find("blk.0.attn_q.weight")->value, c.find("blk.0.attn_q.weight")->value);
  for (const Param& p : a.params()) {
    if (p.gguf_name.find("norm") != std::string::npos) {
      EXPECT_TRUE(std::all_of(p.value.begin(), p.value.end(), [](float x) { return x == 1.0f; })) << p.gguf_name;
      continue;
    }
    double s = 0, s2 = 0;
    for (float x : p.value) s += x, s2 += double(x) * x;
    const double n = static_cast<double>(p.value.size()), mean = s / n, sd = std::sqrt(s2 / n - mean * mean);
    EXPECT_NEAR(sd, 0.02, 0.002) << p.gguf_name;
    EXPECT_NEAR(mean, 0.0, 0.002) << p.gguf_name;
  }
}

// The training forward is Llama::forward's, op for op: the logits are the same bits.
void expect_forward_equals_llama(bool tied) {
  TrainableModel m = make(tied);
  const int64_t B = 3, T = 9, V = m.config().n_vocab;
  std::vector<int32_t> ids = random_ids(B * (T + 1), V, 11);
  ThreadPool pool(2);
  auto logits = m.forward({ids, B, T + 1}, &pool);
  ASSERT_TRUE(logits.ok()) << logits.message();
  ASSERT_EQ(logits->size(), static_cast<size_t>(B * T * V));

  Llama llama(m.as_model(), &pool);
  KvCache cache(m.config(), static_cast<int>(B), T + 1);
  std::vector<SeqTokens> batch;
  for (int64_t b = 0; b < B; ++b)
    batch.push_back({static_cast<int>(b), {ids.begin() + b * (T + 1), ids.begin() + b * (T + 1) + T}, true});
  std::vector<float> want;
  ASSERT_TRUE(llama.forward(batch, cache, want).ok());
  ASSERT_EQ(want.size(), logits->size());
  float max_diff = 0;
  for (size_t i = 0; i < want.size(); ++i) max_diff = std::max(max_diff, std::fabs(want[i] - (*logits)[i]));
  EXPECT_EQ(max_diff, 0.0f);
  EXPECT_EQ(want, *logits);
}

TEST(TrainStep, ForwardLogitsEqualLlamaForwardUntied) { expect_forward_equals_llama(false); }
TEST(TrainStep, ForwardLogitsEqualLlamaForwardTied) { expect_forward_equals_llama(true); }

// The backward against central finite differences of the loss, for the largest
// gradient entry of every tensor and a few others. float32 differences of a loss
// of ~4.6 carry ~1e-4 of noise, hence the tolerance; tests/reference/
// check_train_step.py holds the exact comparison with PyTorch.
void expect_grads_match_finite_differences(bool tied) {
  TrainableModel m = make(tied, 3);
  const int64_t B = 2, T = 6, V = m.config().n_vocab;
  std::vector<int32_t> ids = random_ids(B * (T + 1), V, 5);
  TokenBatch batch{ids, B, T + 1};
  ASSERT_TRUE(m.accumulate(batch, 1.0f, nullptr).ok());
  std::vector<std::vector<float>> grads;
  for (const Param& p : m.params()) grads.push_back(p.grad);
  m.zero_grad();
  auto loss_at = [&]() {
    auto l = m.accumulate(batch, 1.0f, nullptr);
    m.zero_grad();
    return static_cast<double>(*l);
  };
  int checked = 0;
  for (size_t pi = 0; pi < m.params().size(); ++pi) {
    Param& p = m.params()[pi];
    const std::vector<float>& gp = grads[pi];
    std::vector<size_t> idx = {static_cast<size_t>(
        std::max_element(gp.begin(), gp.end(), [](float a, float b) { return std::fabs(a) < std::fabs(b); }) -
        gp.begin())};
    idx.push_back(gp.size() / 3);
    idx.push_back(gp.size() - 1);
    for (size_t i : idx) {
      const float h = 1e-2f, x0 = p.value[i];
      p.value[i] = x0 + h;
      const double up = loss_at();
      p.value[i] = x0 - h;
      const double down = loss_at();
      p.value[i] = x0;
      const double fd = (up - down) / (2.0 * h);
      EXPECT_NEAR(gp[i], fd, 2e-4 + 2e-2 * std::fabs(fd)) << p.gguf_name << "[" << i << "]";
      ++checked;
    }
  }
  EXPECT_GE(checked, 60);
}

TEST(TrainStep, GradientsMatchFiniteDifferencesUntied) { expect_grads_match_finite_differences(false); }
TEST(TrainStep, GradientsMatchFiniteDifferencesTied) { expect_grads_match_finite_differences(true); }

TEST(TrainStep, TiedOutputGradientAddsIntoTheEmbedding) {
  // A token that is never an input still gets an embedding gradient when tied
  // (through the output projection), and none when untied.
  for (bool tied : {false, true}) {
    TrainableModel m = make(tied);
    std::vector<int32_t> ids = {1, 2, 3, 4, 5, 6};  // 96 is never an input
    ASSERT_TRUE(m.accumulate({ids, 1, 6}, 1.0f, nullptr).ok());
    const Param* e = m.find("token_embd.weight");
    const int64_t E = m.config().n_embd;
    float s = 0;
    for (int64_t j = 0; j < E; ++j) s += std::fabs(e->grad[static_cast<size_t>(96 * E + j)]);
    if (tied) EXPECT_GT(s, 0.0f);
    else EXPECT_EQ(s, 0.0f);
  }
}

TEST(TrainStep, AccumulationOverMicroBatchesEqualsOneBatch) {
  TrainableModel one = make(false), two = make(false);
  const int64_t B = 4, T = 8;
  std::vector<int32_t> ids = random_ids(B * (T + 1), one.config().n_vocab, 9);
  AdamWParams hp;
  hp.lr = 1e-3;
  hp.weight_decay = 0.1;
  ThreadPool pool(2);
  auto r1 = train_step(one, {ids, B, T + 1}, hp, 1.0f, 1, &pool);
  auto r2 = train_step(two, {ids, B, T + 1}, hp, 1.0f, 2, &pool);
  ASSERT_TRUE(r1.ok() && r2.ok());
  EXPECT_NEAR(r1->loss, r2->loss, 1e-6f * r1->loss);
  EXPECT_NEAR(r1->grad_norm, r2->grad_norm, 1e-5f * r1->grad_norm);
  float max_diff = 0;
  for (size_t i = 0; i < one.params().size(); ++i)
    for (size_t j = 0; j < one.params()[i].value.size(); ++j)
      max_diff = std::max(max_diff, std::fabs(one.params()[i].value[j] - two.params()[i].value[j]));
  EXPECT_LT(max_diff, 1e-6f);
  EXPECT_FALSE(train_step(two, {ids, B, T + 1}, hp, 1.0f, 3, &pool).ok());  // 4 rows do not split in 3
}

TEST(TrainStep, LossFallsWhenOneBatchIsRepeated) {
  TrainableModel m = make(true);
  const int64_t B = 2, T = 16;
  std::vector<int32_t> ids = random_ids(B * (T + 1), m.config().n_vocab, 4);
  AdamWParams hp;
  hp.lr = 1e-2;
  ThreadPool pool(2);
  float first = 0, last = 0;
  for (int s = 0; s < 40; ++s) {
    auto r = train_step(m, {ids, B, T + 1}, hp, 1.0f, 1, &pool);
    ASSERT_TRUE(r.ok()) << r.message();
    if (s == 0) first = r->loss;
    last = r->loss;
  }
  EXPECT_NEAR(first, std::log(97.0f), 0.2f);  // a random model is near uniform
  EXPECT_LT(last, 0.3f * first);
  EXPECT_EQ(m.step(), 40);
}

TEST(TrainStep, BadBatchesAreErrors) {
  TrainableModel m = make(false);
  std::vector<int32_t> ids = {1, 2, 97};
  auto r = m.accumulate({ids, 1, 3}, 1.0f, nullptr);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.message().find("outside the vocabulary"), std::string::npos) << r.message();
  std::vector<int32_t> masked = {1, 2, kIgnoreIndex};
  EXPECT_TRUE(m.accumulate({masked, 1, 3}, 1.0f, nullptr).ok());  // a masked last target is fine
  std::vector<int32_t> masked_input = {1, kIgnoreIndex, 3};
  EXPECT_FALSE(m.accumulate({masked_input, 1, 3}, 1.0f, nullptr).ok());
  EXPECT_FALSE(m.accumulate({ids, 1, 2}, 1.0f, nullptr).ok());  // 3 ids are not 1 x 2
  EXPECT_FALSE(m.accumulate({ids, 1, 1}, 1.0f, nullptr).ok());  // no target
}

}  // namespace
}  // namespace hanul
