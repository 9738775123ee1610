// Sampler tests: each filter alone on hand-made logits keeps exactly the candidates llama.cpp
// (src/llama-sampling.cpp) keeps, the penalties follow its formulas, seeded runs repeat, and a
// chi-square test checks that sampling draws from the renormalised distribution.
#include "hanul/generate/sampler.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <set>
#include <vector>

// Designated initializers leave the other SamplerParams fields at their defaults on purpose.
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"

namespace hanul {
namespace {

std::set<int32_t> ids(const Candidates& c) {
  std::set<int32_t> s;
  for (const auto& t : c.data) s.insert(t.id);
  return s;
}

Candidates make(std::vector<float> logits) { return Candidates::from_logits(logits); }

// logits of the probabilities p (up to a constant), so thresholds are easy to read.
std::vector<float> logits_of(std::vector<double> p) {
  std::vector<float> l;
  for (double x : p) l.push_back(float(std::log(x)));
  return l;
}

TEST(Sampler, GreedyIsArgmax) {
  Sampler s({.temperature = 0.0f, .seed = 7});
  std::mt19937 rng(1);
  std::normal_distribution<float> nd(0, 3);
  for (int trial = 0; trial < 50; ++trial) {
    std::vector<float> logits(1000);
    for (auto& x : logits) x = nd(rng);
    int32_t want = int32_t(std::max_element(logits.begin(), logits.end()) - logits.begin());
    EXPECT_EQ(s.sample(logits, {}), want);
  }
  // A tie goes to the lower id (std::max_element's rule too).
  std::vector<float> tie = {1, 5, 2, 5};
  EXPECT_EQ(s.sample(tie, {}), 1);
}

TEST(Sampler, GreedySeesBiasAndPenalties) {
  std::vector<float> logits = {3.0f, 2.9f, 1.0f};
  Sampler biased({.temperature = 0.0f, .logit_bias = {{0, -INFINITY}}});
  EXPECT_EQ(biased.sample(logits, {}), 1);
  Sampler pen({.temperature = 0.0f, .repeat_penalty = 1.1f});
  std::vector<int32_t> hist = {0};
  EXPECT_EQ(pen.sample(logits, hist), 1);  // 3.0 / 1.1 = 2.73 < 2.9
}

TEST(Sampler, MaskedLogitsAreNeverCandidates) {
  std::vector<float> logits = {-INFINITY, 0.0f, -INFINITY, -1.0f};
  EXPECT_EQ(ids(make(logits)), (std::set<int32_t>{1, 3}));
  std::vector<float> none = {-INFINITY, -INFINITY};
  Sampler s({.seed = 1});
  EXPECT_EQ(s.sample(none, {}), -1);
}

TEST(SamplerFilters, TopK) {
  auto c = make({0.1f, 3.0f, 2.0f, -1.0f, 2.5f});
  sampling::top_k(c, 2, 1);
  EXPECT_EQ(ids(c), (std::set<int32_t>{1, 4}));
  // k <= 0 or k >= n: no-op.
  c = make({0.1f, 3.0f, 2.0f});
  sampling::top_k(c, 0, 1);
  EXPECT_EQ(c.data.size(), 3u);
  sampling::top_k(c, 10, 1);
  EXPECT_EQ(c.data.size(), 3u);
  // min_keep wins over a smaller k.
  c = make({0.1f, 3.0f, 2.0f, 1.0f});
  sampling::top_k(c, 1, 3);
  EXPECT_EQ(ids(c), (std::set<int32_t>{1, 2, 3}));
  // Ties at the k-th place: exactly k survive (llama.cpp), lower ids first.
  // transformers would keep {0, 2, 3, 4} here (every logit >= the k-th).
  c = make({1.0f, 0.0f, 1.0f, 1.0f, 2.0f});
  sampling::top_k(c, 2, 1);
  EXPECT_EQ(ids(c), (std::set<int32_t>{4, 0}));
  EXPECT_TRUE(c.sorted);
  EXPECT_EQ(c.data[0].id, 4);
}

TEST(SamplerFilters, TopP) {
  // p = 0.5, 0.3, 0.15, 0.05
  auto c = make(logits_of({0.15, 0.5, 0.05, 0.3}));
  sampling::top_p(c, 0.7f, 1);  // 0.5 < 0.7 <= 0.8: keep two
  EXPECT_EQ(ids(c), (std::set<int32_t>{1, 3}));
  c = make(logits_of({0.15, 0.5, 0.05, 0.3}));
  sampling::top_p(c, 0.81f, 1);  // 0.8 < 0.81 <= 0.95
  EXPECT_EQ(ids(c), (std::set<int32_t>{1, 3, 0}));
  c = make(logits_of({0.15, 0.5, 0.05, 0.3}));
  sampling::top_p(c, 0.1f, 1);  // the top token alone already has the mass
  EXPECT_EQ(ids(c), (std::set<int32_t>{1}));
  c = make(logits_of({0.15, 0.5, 0.05, 0.3}));
  sampling::top_p(c, 0.1f, 3);  // min_keep
  EXPECT_EQ(ids(c), (std::set<int32_t>{1, 3, 0}));
  c = make(logits_of({0.15, 0.5, 0.05, 0.3}));
  sampling::top_p(c, 1.0f, 1);  // off
  EXPECT_EQ(c.data.size(), 4u);
  // Probabilities are filled and still sum to 1 over the whole set before the cut.
  c = make(logits_of({0.15, 0.5, 0.05, 0.3}));
  sampling::top_p(c, 0.7f, 1);
  EXPECT_NEAR(c.data[0].p, 0.5, 1e-6);
  EXPECT_NEAR(c.data[1].p, 0.3, 1e-6);
}

TEST(SamplerFilters, MinP) {
  // p = 0.5, 0.3, 0.15, 0.05; min_p 0.25 -> threshold 0.125
  auto c = make(logits_of({0.15, 0.5, 0.05, 0.3}));
  sampling::min_p(c, 0.25f, 1);
  EXPECT_EQ(ids(c), (std::set<int32_t>{1, 3, 0}));
  c = make(logits_of({0.15, 0.5, 0.05, 0.3}));
  sampling::min_p(c, 0.9f, 1);
  EXPECT_EQ(ids(c), (std::set<int32_t>{1}));
  c = make(logits_of({0.15, 0.5, 0.05, 0.3}));
  sampling::min_p(c, 0.9f, 2);
  EXPECT_EQ(ids(c), (std::set<int32_t>{1, 3}));
  c = make(logits_of({0.15, 0.5, 0.05, 0.3}));
  sampling::min_p(c, 0.0f, 1);
  EXPECT_EQ(c.data.size(), 4u);
  // Equal to the threshold is kept (p_i >= min_p * p_max).
  c = make({0.0f, std::log(0.5f), -5.0f});
  sampling::min_p(c, 0.5f, 1);
  EXPECT_EQ(ids(c), (std::set<int32_t>{0, 1}));
}

TEST(SamplerFilters, Typical) {
  // p = 0.4, 0.3, 0.2, 0.1. Entropy H = 1.2799 nats; |-log p - H| =
  //   0.4: 0.3636, 0.3: 0.0759, 0.2: 0.3295, 0.1: 1.0227
  // so the typical order is 0.3, 0.2, 0.4, 0.1 with running mass 0.3, 0.5, 0.9, 1.0.
  auto run = [](float p, size_t min_keep) {
    auto c = make(logits_of({0.1, 0.4, 0.2, 0.3}));
    sampling::typical(c, p, min_keep);
    return ids(c);
  };
  EXPECT_EQ(run(0.25f, 1), (std::set<int32_t>{3}));
  EXPECT_EQ(run(0.45f, 1), (std::set<int32_t>{3, 2}));
  EXPECT_EQ(run(0.6f, 1), (std::set<int32_t>{3, 2, 1}));
  EXPECT_EQ(run(0.95f, 1), (std::set<int32_t>{3, 2, 1, 0}));
  EXPECT_EQ(run(0.25f, 2), (std::set<int32_t>{3, 2}));
  EXPECT_EQ(run(1.0f, 1).size(), 4u);
}

TEST(SamplerFilters, Temperature) {
  auto c = make({1.0f, 2.0f, -4.0f});
  sampling::temperature(c, 0.5f);
  EXPECT_FLOAT_EQ(c.data[0].logit, 2.0f);
  EXPECT_FLOAT_EQ(c.data[1].logit, 4.0f);
  EXPECT_FLOAT_EQ(c.data[2].logit, -8.0f);
  c = make({1.0f, 2.0f, -4.0f});
  sampling::temperature(c, 0.0f);
  EXPECT_EQ(ids(c), (std::set<int32_t>{1}));
}

TEST(SamplerFilters, PenaltiesFollowLlamaCpp) {
  auto c = make({2.0f, -2.0f, 1.0f, 0.0f, 3.0f});
  std::vector<int32_t> recent = {0, 1, 0, 3, 0};  // counts: 0 x3, 1 x1, 3 x1
  sampling::penalties(c, recent, 1.5f, 0.25f, 0.5f);
  // repeat: positive / 1.5, non-positive * 1.5; then - count*0.25 - 0.5
  EXPECT_FLOAT_EQ(c.data[0].logit, 2.0f / 1.5f - 3 * 0.25f - 0.5f);
  EXPECT_FLOAT_EQ(c.data[1].logit, -2.0f * 1.5f - 0.25f - 0.5f);
  EXPECT_FLOAT_EQ(c.data[2].logit, 1.0f);  // not seen
  EXPECT_FLOAT_EQ(c.data[3].logit, 0.0f * 1.5f - 0.25f - 0.5f);
  EXPECT_FLOAT_EQ(c.data[4].logit, 3.0f);
}

TEST(SamplerFilters, PenaltiesLookOnlyAtTheLastN) {
  std::vector<float> logits = {2.0f, 2.0f};
  std::vector<int32_t> hist = {0, 0, 0, 1};
  Sampler s({.temperature = 0.0f, .repeat_last_n = 1, .frequency_penalty = 1.0f});
  auto c = s.filter(logits, hist);  // only id 1 was seen in the last 1
  ASSERT_EQ(c.data.size(), 1u);
  EXPECT_EQ(c.data[0].id, 0);
  Sampler all({.temperature = 0.0f, .repeat_last_n = -1, .frequency_penalty = 1.0f});
  EXPECT_EQ(all.sample(logits, hist), 1);  // id 0 seen 3 times
  Sampler off({.temperature = 0.0f, .repeat_last_n = 0, .frequency_penalty = 1.0f});
  EXPECT_EQ(off.sample(logits, hist), 0);
}

TEST(SamplerFilters, LogitBias) {
  auto c = make({1.0f, 1.0f, 1.0f});
  sampling::logit_bias(c, {{1, 2.5f}, {2, -INFINITY}, {99, 1.0f}});
  EXPECT_EQ(ids(c), (std::set<int32_t>{0, 1}));
  EXPECT_FLOAT_EQ(c.data[1].logit, 3.5f);
}

TEST(Sampler, ChainOrder) {
  // Temperature comes last, so it cannot change which tokens top-p keeps: at T=0.1 the
  // distribution is nearly one-hot, yet top-p 0.7 (computed at T=1) keeps two tokens.
  std::vector<float> logits = logits_of({0.15, 0.5, 0.05, 0.3});
  Sampler s({.temperature = 0.1f, .top_k = 0, .top_p = 0.7f, .min_p = 0.0f});
  EXPECT_EQ(ids(s.filter(logits, {})), (std::set<int32_t>{1, 3}));
  // Bias comes before top-k: a biased-up token can enter the top 1.
  Sampler b({.top_k = 1, .top_p = 1.0f, .min_p = 0.0f, .logit_bias = {{2, 10.0f}}});
  EXPECT_EQ(ids(b.filter(logits, {})), (std::set<int32_t>{2}));
}

TEST(Sampler, SameSeedSameDraws) {
  std::mt19937 rng(3);
  std::normal_distribution<float> nd(0, 2);
  std::vector<float> logits(500);
  for (auto& x : logits) x = nd(rng);
  SamplerParams p{.temperature = 1.0f, .top_k = 0, .top_p = 1.0f, .min_p = 0.0f, .seed = 1234};
  Sampler a(p), b(p);
  std::vector<int32_t> da, db, dc;
  for (int i = 0; i < 200; ++i) {
    da.push_back(a.sample(logits, {}));
    db.push_back(b.sample(logits, {}));
  }
  EXPECT_EQ(da, db);
  p.seed = 1235;
  Sampler c(p);
  for (int i = 0; i < 200; ++i) dc.push_back(c.sample(logits, {}));
  EXPECT_NE(da, dc);
  a.reseed(1234);
  for (int i = 0; i < 200; ++i) EXPECT_EQ(a.sample(logits, {}), da[i]);
}

// Pearson's chi-square statistic of observed counts against expected probabilities.
double chi_square(const std::vector<int>& observed, const std::vector<double>& expected, int n) {
  double chi2 = 0;
  for (size_t i = 0; i < observed.size(); ++i) {
    double e = expected[i] * n;
    chi2 += (observed[i] - e) * (observed[i] - e) / e;
  }
  return chi2;
}

// Upper critical values of chi-square at p = 0.001 for df = 1..7 (any statistics table).
// A correct sampler fails one such check once in a thousand seeds; the seed is fixed.
constexpr double kChi2Crit001[] = {0, 10.828, 13.816, 16.266, 18.467, 20.515, 22.458, 24.322};

struct DistCase {
  const char* name;
  SamplerParams params;
  std::vector<int32_t> kept;  // the ids the filters must keep
};

TEST(Sampler, DrawsFromTheRenormalisedDistribution) {
  // p over 8 ids: 0.3 0.2 0.15 0.12 0.1 0.07 0.04 0.02
  const std::vector<double> p = {0.3, 0.2, 0.15, 0.12, 0.1, 0.07, 0.04, 0.02};
  std::vector<float> logits = logits_of(p);
  const float temp = 0.8f;
  auto params = [&](int32_t top_k, float top_p, float min_p) {
    SamplerParams sp;
    sp.temperature = temp;
    sp.top_k = top_k;
    sp.top_p = top_p;
    sp.min_p = min_p;
    return sp;
  };
  std::vector<DistCase> cases = {
      {"top-k 4", params(4, 1.0f, 0.0f), {0, 1, 2, 3}},
      // cumulative 0.3 0.5 0.65 0.77 0.87: top-p 0.8 keeps five
      {"top-p 0.8", params(0, 0.8f, 0.0f), {0, 1, 2, 3, 4}},
      // min-p 0.2: p >= 0.06 keeps six
      {"min-p 0.2", params(0, 1.0f, 0.2f), {0, 1, 2, 3, 4, 5}},
      {"none", params(0, 1.0f, 0.0f), {0, 1, 2, 3, 4, 5, 6, 7}},
  };
  const int n = 40000;
  for (auto& dc : cases) {
    dc.params.seed = 20240611;
    Sampler s(dc.params);
    std::vector<int> count(p.size(), 0);
    for (int i = 0; i < n; ++i) {
      int32_t id = s.sample(logits, {});
      ASSERT_GE(id, 0);
      ++count[id];
    }
    // Expected: p^(1/T) over the kept ids, renormalised.
    std::vector<double> expected;
    std::vector<int> observed;
    double z = 0;
    for (int32_t id : dc.kept) z += std::pow(p[id], 1.0 / temp);
    for (int32_t id : dc.kept) {
      expected.push_back(std::pow(p[id], 1.0 / temp) / z);
      observed.push_back(count[id]);
    }
    int drawn_outside = n;
    for (int c : observed) drawn_outside -= c;
    EXPECT_EQ(drawn_outside, 0) << dc.name;
    double chi2 = chi_square(observed, expected, n);
    EXPECT_LT(chi2, kChi2Crit001[dc.kept.size() - 1]) << dc.name << " chi2=" << chi2;
  }
}

TEST(Sampler, ChiSquareDetectsAWrongDistribution) {
  // The statistic has power: the same draws tested against the un-tempered p must fail.
  const std::vector<double> p = {0.3, 0.2, 0.15, 0.12, 0.1, 0.07, 0.04, 0.02};
  Sampler s({.temperature = 0.8f, .top_k = 4, .top_p = 1.0f, .min_p = 0.0f, .seed = 5});
  std::vector<float> logits = logits_of(p);
  std::vector<int> count(4, 0);
  const int n = 40000;
  for (int i = 0; i < n; ++i) ++count[s.sample(logits, {})];
  std::vector<double> wrong = {0.3 / 0.77, 0.2 / 0.77, 0.15 / 0.77, 0.12 / 0.77};
  EXPECT_GT(chi_square(count, wrong, n), kChi2Crit001[3]);
}

TEST(Sampler, LargeVocabIsFast) {
  // 128k logits with the default chain: top-k 40 first keeps the rest cheap.
  std::mt19937 rng(9);
  std::normal_distribution<float> nd(0, 3);
  std::vector<float> logits(128256);
  for (auto& x : logits) x = nd(rng);
  std::vector<int32_t> hist(64);
  for (int i = 0; i < 64; ++i) hist[i] = i * 17;
  Sampler s({.repeat_penalty = 1.1f, .seed = 3});
  for (int i = 0; i < 50; ++i) {
    int32_t id = s.sample(logits, hist);
    ASSERT_GE(id, 0);
    ASSERT_LT(id, 128256);
  }
}

}  // namespace
}  // namespace hanul
