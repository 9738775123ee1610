#include "hanul/generate/generator.h"

#include <gtest/gtest.h>

#include <memory>

#include "hanul/base/thread_pool.h"

namespace hanul {
namespace {

const std::string kStories = std::string(HANUL_SOURCE_DIR) + "/models/stories260K/stories260K-f32.gguf";

// The first 64 greedy ids after BOS (shared/data/MANIFEST.md; "Once upon a time, there was a
// little girl named Lily...").
const std::vector<int32_t> kGreedy = {
    403, 407, 261, 378, 432, 383, 286, 261, 376, 298, 315, 421, 395, 317, 426, 338, 401, 396, 267, 337, 410, 408,
    419, 292, 411, 322, 265, 282, 295, 433, 426, 385, 328, 432, 358, 394, 261, 370, 432, 352, 266, 268, 388, 426,
    338, 391, 266, 267, 337, 335, 312, 432, 398, 312, 286, 267, 414, 270, 333, 415, 426, 13,  438, 310};

struct Fixture {
  std::shared_ptr<Model> model;
  Tokenizer tok;
  ThreadPool pool{2};
  std::unique_ptr<Llama> llama;

  Fixture() {
    auto m = load_model(kStories);
    EXPECT_TRUE(m.ok()) << m.message();
    model = *m;
    auto t = Tokenizer::load(kStories);
    EXPECT_TRUE(t.ok()) << t.message();
    tok = *t;
    llama = std::make_unique<Llama>(model, &pool);
  }
};

Fixture& fx() {
  static Fixture f;
  return f;
}

SamplerParams greedy() {
  SamplerParams p;
  p.temperature = 0;
  return p;
}

TokenCallback collect(std::string* out) {
  return [out](int32_t, std::string_view text) {
    out->append(text);
    return true;
  };
}

TEST(Generator, GreedyFromBosMatchesPublishedIdsAndStreamsTheirText) {
  auto& f = fx();
  KvCache cache(f.model->config, 1, 128);
  Generator gen(*f.llama, cache, &f.tok);
  Sampler sampler(greedy());
  std::string streamed;
  GenerateOptions opt;
  opt.n_predict = 64;
  auto r = gen.generate(std::vector<int32_t>{1}, sampler, opt, collect(&streamed));
  ASSERT_TRUE(r.ok()) << r.message();
  EXPECT_EQ(r->tokens, kGreedy);
  EXPECT_EQ(r->reason, StopReason::kLength);
  EXPECT_EQ(streamed, r->text);
  EXPECT_EQ(streamed, f.tok.decode(kGreedy));
  EXPECT_EQ(r->n_prompt, 1);
  // The last sampled token is never evaluated: the cache holds BOS + 63 ids.
  EXPECT_EQ(gen.cached().size(), 64u);
  EXPECT_EQ(cache.seq_len(0), 64);
}

TEST(Generator, PrefixReuseGivesTheSameContinuationAsAFreshCache) {
  auto& f = fx();
  KvCache cache(f.model->config, 1, 256);
  Generator gen(*f.llama, cache, &f.tok);
  Sampler s1(greedy());
  std::string text;
  GenerateOptions opt;
  opt.n_predict = 20;
  auto first = gen.generate(std::vector<int32_t>{1, 403, 407}, s1, opt, collect(&text));
  ASSERT_TRUE(first.ok()) << first.message();
  EXPECT_EQ(first->n_prompt_reused, 0);

  // The next "turn": the old prompt, the answer, and some new tokens.
  std::vector<int32_t> next = {1, 403, 407};
  next.insert(next.end(), first->tokens.begin(), first->tokens.end());
  next.insert(next.end(), {300, 12, 261});
  auto second = gen.generate(next, s1, opt, collect(&text));
  ASSERT_TRUE(second.ok()) << second.message();
  EXPECT_EQ(second->n_prompt_reused, static_cast<int64_t>(3 + first->tokens.size() - 1));
  EXPECT_EQ(second->n_prompt, static_cast<int64_t>(next.size()));

  KvCache fresh_cache(f.model->config, 1, 256);
  Generator fresh(*f.llama, fresh_cache, &f.tok);
  Sampler s2(greedy());
  auto again = fresh.generate(next, s2, opt, collect(&text));
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->n_prompt_reused, 0);
  EXPECT_EQ(second->tokens, again->tokens);

  // A prompt that diverges early recomputes from the divergence; the same prompt twice
  // re-evaluates only its last token.
  std::vector<int32_t> other = {1, 403, 300};
  ASSERT_TRUE(gen.prefill(other).ok());
  EXPECT_EQ(gen.cached(), other);
  ASSERT_TRUE(gen.prefill(other).ok());
  EXPECT_EQ(gen.cached(), other);
  auto r = gen.run(s1, opt, collect(&text));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->n_prompt_reused, 2);
}

TEST(Generator, StopStringEndsTheTextBeforeItAndIsNeverEmitted) {
  auto& f = fx();
  KvCache cache(f.model->config, 1, 128);
  Generator gen(*f.llama, cache, &f.tok);
  Sampler sampler(greedy());
  std::string streamed;
  GenerateOptions opt;
  opt.n_predict = 64;
  opt.stops = {"zzz", " named Li"};
  auto r = gen.generate(std::vector<int32_t>{1}, sampler, opt, collect(&streamed));
  ASSERT_TRUE(r.ok()) << r.message();
  EXPECT_EQ(r->reason, StopReason::kStopString);
  EXPECT_EQ(r->stop_index, 1);
  EXPECT_EQ(streamed, r->text);
  EXPECT_EQ(streamed, "Once upon a time, there was a little girl");
  EXPECT_LT(r->tokens.size(), kGreedy.size());
}

TEST(Generator, SameSeedSameTokensOtherSeedOtherTokens) {
  auto& f = fx();
  auto sample = [&](uint32_t seed) {
    KvCache cache(f.model->config, 1, 128);
    Generator gen(*f.llama, cache, &f.tok);
    SamplerParams p;
    p.temperature = 1.0f;
    p.top_k = 0;
    p.top_p = 1.0f;
    p.min_p = 0;
    p.seed = seed;
    Sampler sampler(p);
    GenerateOptions opt;
    opt.n_predict = 48;
    opt.ignore_eos = true;
    std::string text;
    auto r = gen.generate(std::vector<int32_t>{1}, sampler, opt, collect(&text));
    EXPECT_TRUE(r.ok());
    return r->tokens;
  };
  EXPECT_EQ(sample(7), sample(7));
  EXPECT_NE(sample(7), sample(8));
}

TEST(Generator, GrammarConstrainsTheOutput) {
  auto& f = fx();
  auto g = Grammar::parse(R"(root ::= ("yes" | "no") " " [0-9] [0-9]?)");
  ASSERT_TRUE(g.ok()) << g.message();
  auto grammar = std::make_shared<const Grammar>(std::move(g).value());
  for (uint32_t seed = 0; seed < 5; ++seed) {
    KvCache cache(f.model->config, 1, 64);
    Generator gen(*f.llama, cache, &f.tok);
    SamplerParams p;
    p.temperature = 1.5f;
    p.seed = seed;
    Sampler sampler(p);
    GenerateOptions opt;
    opt.n_predict = 20;
    opt.grammar = grammar;
    std::string text;
    auto r = gen.generate(std::vector<int32_t>{1}, sampler, opt, collect(&text));
    ASSERT_TRUE(r.ok()) << r.message();
    ASSERT_TRUE(r->text.rfind("yes ", 0) == 0 || r->text.rfind("no ", 0) == 0) << r->text;
    const std::string digits = r->text.substr(r->text[0] == 'y' ? 4 : 3);
    EXPECT_TRUE(digits.size() == 1 || digits.size() == 2) << r->text;
    for (char c : digits) EXPECT_TRUE(c >= '0' && c <= '9') << r->text;
    EXPECT_TRUE(r->reason == StopReason::kGrammar || r->reason == StopReason::kEog) << stop_reason_name(r->reason);
  }
}

TEST(Generator, LimitsCancelAndContext) {
  auto& f = fx();
  KvCache cache(f.model->config, 1, 10);
  Generator gen(*f.llama, cache, &f.tok);
  Sampler sampler(greedy());
  std::string text;
  GenerateOptions opt;

  opt.n_predict = 0;
  auto none = gen.generate(std::vector<int32_t>{1}, sampler, opt, collect(&text));
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->tokens.empty());
  EXPECT_EQ(none->reason, StopReason::kLength);

  // A context of 10: BOS + 9 evaluated tokens fill it; the 10th sampled token is the last.
  opt.n_predict = -1;
  auto full = gen.generate(std::vector<int32_t>{1}, sampler, opt, collect(&text));
  ASSERT_TRUE(full.ok()) << full.message();
  EXPECT_EQ(full->reason, StopReason::kContextFull);
  EXPECT_EQ(full->tokens, std::vector<int32_t>(kGreedy.begin(), kGreedy.begin() + 10));

  std::atomic<bool> cancel{true};
  opt.cancel = &cancel;
  auto c = gen.generate(std::vector<int32_t>{1}, sampler, opt, collect(&text));
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->reason, StopReason::kCancelled);
  EXPECT_TRUE(c->tokens.empty());
  opt.cancel = nullptr;

  int calls = 0;
  auto cb = gen.generate(std::vector<int32_t>{1}, sampler, opt, [&](int32_t, std::string_view) {
    return ++calls < 3;
  });
  ASSERT_TRUE(cb.ok());
  EXPECT_EQ(cb->reason, StopReason::kCancelled);
  EXPECT_EQ(cb->tokens.size(), 3u);

  auto too_long = gen.prefill(std::vector<int32_t>(11, 1));
  EXPECT_FALSE(too_long.ok());
  EXPECT_NE(too_long.message().find("context"), std::string::npos);
  EXPECT_FALSE(gen.prefill(std::vector<int32_t>{}).ok());
  EXPECT_FALSE(gen.prefill(std::vector<int32_t>{1, 99999}).ok());
  EXPECT_TRUE(gen.cached().empty() || gen.cached().size() <= 1);
}

TEST(Generator, EndOfGenerationIdsComeFromTokenizerAndConfig) {
  auto& f = fx();
  KvCache cache(f.model->config, 1, 16);
  Generator gen(*f.llama, cache, &f.tok);
  EXPECT_TRUE(gen.is_eog(f.tok.eos()));
  EXPECT_FALSE(gen.is_eog(403));
  // Without a tokenizer, the config's EOS ids still end generation; text features are refused.
  Generator bare(*f.llama, cache, nullptr);
  for (int32_t id : f.model->config.eos_ids) EXPECT_TRUE(bare.is_eog(id));
  Sampler sampler(greedy());
  GenerateOptions opt;
  opt.stops = {"x"};
  auto r = bare.generate(std::vector<int32_t>{1}, sampler, opt, [](int32_t, std::string_view) { return true; });
  EXPECT_FALSE(r.ok());
}

}  // namespace
}  // namespace hanul

namespace hanul {
namespace {

// An unbounded string in a JSON-like grammar: sampling alone writes story text until -n cuts
// it; the generator keeps the closing bytes within the budget, so the output always finishes.
TEST(Generator, GrammarFinishesWithinTheTokenBudget) {
  auto& f = fx();
  auto g = Grammar::parse(R"(root ::= "{\"a\": [" str ("," str)* "]}"
str ::= "\"" [^"\\]* "\"")");
  ASSERT_TRUE(g.ok()) << g.message();
  auto grammar = std::make_shared<const Grammar>(std::move(g).value());
  for (int n : {12, 16, 30, 60}) {
    for (uint32_t seed = 0; seed < 3; ++seed) {
      KvCache cache(f.model->config, 1, 128);
      Generator gen(*f.llama, cache, &f.tok);
      SamplerParams p;
      p.temperature = seed == 0 ? 0.0f : 1.0f;
      p.seed = seed;
      Sampler sampler(p);
      GenerateOptions opt;
      opt.n_predict = n;
      opt.grammar = grammar;
      std::string text;
      auto r = gen.generate(std::vector<int32_t>{1}, sampler, opt, collect(&text));
      ASSERT_TRUE(r.ok()) << r.message();
      EXPECT_LE(static_cast<int>(r->tokens.size()), n);
      GrammarMatcher m(*grammar);
      EXPECT_TRUE(m.accept_bytes(r->text) && m.is_complete()) << "n " << n << " seed " << seed << ": " << r->text;
    }
  }
}

}  // namespace
}  // namespace hanul
