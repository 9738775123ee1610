#include "hanul/model/llama.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

#include "hanul/base/thread_pool.h"

namespace hanul {
namespace {

const std::string kStories = std::string(HANUL_SOURCE_DIR) + "/models/stories260K/stories260K-f32.gguf";

std::shared_ptr<Model> stories() {
  auto m = load_model(kStories);
  EXPECT_TRUE(m.ok()) << m.message();
  return *m;
}

float max_abs_diff(const float* a, const float* b, size_t n) {
  float d = 0;
  for (size_t i = 0; i < n; ++i) d = std::max(d, std::fabs(a[i] - b[i]));
  return d;
}

TEST(Llama, Stories260KGreedyFromBosMatchesPublishedIds) {
  // The first 64 greedy ids after BOS, from shared/data/MANIFEST.md (they spell
  // "Once upon a time, there was a little girl named Lily...").
  const std::vector<int32_t> expected = {
      403, 407, 261, 378, 432, 383, 286, 261, 376, 298, 315, 421, 395, 317, 426, 338, 401, 396, 267, 337, 410, 408,
      419, 292, 411, 322, 265, 282, 295, 433, 426, 385, 328, 432, 358, 394, 261, 370, 432, 352, 266, 268, 388, 426,
      338, 391, 266, 267, 337, 335, 312, 432, 398, 312, 286, 267, 414, 270, 333, 415, 426, 13,  438, 310};
  auto model = stories();
  ThreadPool pool(2);
  Llama llama(model, &pool);
  KvCache cache(model->config, 1, 128);
  std::vector<int32_t> got;
  int32_t tok = 1;
  std::vector<float> logits;
  for (int i = 0; i < 64; ++i) {
    SeqTokens s{0, {tok}, false};
    ASSERT_TRUE(llama.forward({&s, 1}, cache, logits).ok());
    tok = static_cast<int32_t>(std::max_element(logits.begin(), logits.end()) - logits.begin());
    got.push_back(tok);
  }
  EXPECT_EQ(got, expected);
}

TEST(Llama, BatchOfDifferentLengthsEqualsEachAlone) {
  auto model = stories();
  ThreadPool pool(3);
  Llama llama(model, &pool);
  const int64_t V = model->config.n_vocab;
  std::vector<SeqTokens> batch = {{0, {1, 403, 407, 261, 378}, true}, {1, {1, 300, 12}, true}, {2, {1}, false}};
  KvCache cache(model->config, 3, 64);
  std::vector<float> together;
  ASSERT_TRUE(llama.forward(batch, cache, together).ok());
  ASSERT_EQ(together.size(), static_cast<size_t>((5 + 3 + 1) * V));
  size_t offset = 0;
  for (const SeqTokens& s : batch) {
    KvCache alone_cache(model->config, 1, 64);
    SeqTokens one{0, s.tokens, s.all_logits};
    std::vector<float> alone;
    ASSERT_TRUE(llama.forward({&one, 1}, alone_cache, alone).ok());
    EXPECT_LT(max_abs_diff(alone.data(), together.data() + offset, alone.size()), 1e-5f);
    offset += alone.size();
  }
}

TEST(Llama, IncrementalDecodingEqualsOnePass) {
  auto model = stories();
  Llama llama(model, nullptr);
  const std::vector<int32_t> prompt = {1, 403, 407, 261, 378, 432, 383};
  const int64_t V = model->config.n_vocab;
  KvCache full_cache(model->config, 1, 32);
  std::vector<float> full;
  SeqTokens all{0, prompt, true};
  ASSERT_TRUE(llama.forward({&all, 1}, full_cache, full).ok());
  KvCache cache(model->config, 1, 32);
  std::vector<float> part;
  SeqTokens head{0, {prompt.begin(), prompt.begin() + 3}, true};
  ASSERT_TRUE(llama.forward({&head, 1}, cache, part).ok());
  EXPECT_LT(max_abs_diff(part.data(), full.data(), static_cast<size_t>(3 * V)), 1e-5f);
  for (size_t i = 3; i < prompt.size(); ++i) {
    SeqTokens one{0, {prompt[i]}, false};
    ASSERT_TRUE(llama.forward({&one, 1}, cache, part).ok());
    EXPECT_LT(max_abs_diff(part.data(), full.data() + i * V, static_cast<size_t>(V)), 1e-5f) << "position " << i;
  }
  EXPECT_EQ(cache.seq_len(0), static_cast<int64_t>(prompt.size()));
}

TEST(Llama, ThreadCountDoesNotChangeLogits) {
  auto model = stories();
  std::vector<float> a, b;
  SeqTokens s{0, {1, 403, 407, 261, 378}, true};
  {
    ThreadPool pool(1);
    Llama llama(model, &pool);
    KvCache cache(model->config, 1, 16);
    ASSERT_TRUE(llama.forward({&s, 1}, cache, a).ok());
  }
  {
    ThreadPool pool(3);
    Llama llama(model, &pool);
    KvCache cache(model->config, 1, 16);
    ASSERT_TRUE(llama.forward({&s, 1}, cache, b).ok());
  }
  EXPECT_EQ(a, b);
}

TEST(Llama, BadInputIsAClearError) {
  auto model = stories();
  Llama llama(model, nullptr);
  KvCache cache(model->config, 2, 4);
  std::vector<float> logits;
  SeqTokens bad_id{0, {1, 512}, false};
  auto s = llama.forward({&bad_id, 1}, cache, logits);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("outside the vocabulary"), std::string::npos) << s.message();
  SeqTokens too_long{0, {1, 2, 3, 4, 5}, false};
  s = llama.forward({&too_long, 1}, cache, logits);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("context size"), std::string::npos) << s.message();
  std::vector<SeqTokens> twice = {{1, {1}, false}, {1, {2}, false}};
  EXPECT_FALSE(llama.forward(twice, cache, logits).ok());
  SeqTokens bad_slot{7, {1}, false};
  EXPECT_FALSE(llama.forward({&bad_slot, 1}, cache, logits).ok());
  EXPECT_EQ(cache.seq_len(0), 0);  // failed calls leave the cache as it was
}

}  // namespace
}  // namespace hanul
