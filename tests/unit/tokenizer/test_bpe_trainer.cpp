// The byte-level BPE trainer against Stanford CS336's reference run
// (tests/fixtures/tokenizer/bpe-train: corpus.en, vocab 500, special
// <|endoftext|>): the same merges in the same order and the same vocab ids.
// Then the tokenizer.json it writes must load and round-trip text.
#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

#include "hanul/tokenizer/bpe_trainer.h"
#include "hanul/tokenizer/tokenizer.h"
#include "tokenizer_test_util.h"

namespace hanul {
namespace {

using testing::read_all;
using testing::tokenizer_fixture;

BpeTrainResult train(const std::string& text, int vocab_size, std::vector<std::string> specials = {}) {
  BpeTrainOptions o;
  o.vocab_size = vocab_size;
  o.special_tokens = std::move(specials);
  auto t = BpeTrainer::create(o);
  EXPECT_TRUE(t.ok()) << t.message();
  t->add_text(text);
  auto r = t->train();
  EXPECT_TRUE(r.ok()) << r.message();
  return std::move(r).value();
}

TEST(BpeTrainer, ReproducesCs336ReferenceMerges) {
  const std::string corpus = read_all(tokenizer_fixture("bpe-train/corpus.en.txt"));
  ASSERT_GT(corpus.size(), 100000u);
  const BpeTrainResult r = train(corpus, 500, {"<|endoftext|>"});
  ASSERT_EQ(r.tokens.size(), 500u);
  ASSERT_EQ(r.merges.size(), 243u);
  EXPECT_EQ(bpe_merges_txt(r), read_all(tokenizer_fixture("bpe-train/train-bpe-reference-merges.txt")));
}

TEST(BpeTrainer, ReproducesCs336ReferenceVocab) {
  const std::string corpus = read_all(tokenizer_fixture("bpe-train/corpus.en.txt"));
  const BpeTrainResult r = train(corpus, 500, {"<|endoftext|>"});
  const auto want = nlohmann::json::parse(read_all(tokenizer_fixture("bpe-train/train-bpe-reference-vocab.json")));
  const auto got = nlohmann::json::parse(bpe_vocab_json(r));
  ASSERT_EQ(want.size(), 500u);
  ASSERT_EQ(got.size(), want.size());
  for (auto it = want.begin(); it != want.end(); ++it) {
    ASSERT_TRUE(got.contains(it.key())) << it.key();
    EXPECT_EQ(got[it.key()], it.value()) << it.key();
  }
}

TEST(BpeTrainer, TiesGoToTheGreatestBytePair) {
  // "ab" and "cd" both occur twice; (c, d) > (a, b) bytewise, so it is first.
  const BpeTrainResult r = train("ab cd ab cd", 256 + 2);
  ASSERT_EQ(r.merges.size(), 2u);
  // Words: "ab" x1, " cd" x2, " ab" x1: (' ', 'c') and ('c', 'd') count 2,
  // (' ', 'a') 1, ('a', 'b') 2. Max count 2; greatest pair is ('c', 'd').
  EXPECT_EQ(r.merges[0].first, "c");
  EXPECT_EQ(r.merges[0].second, "d");
  // Then (' ', 'cd') 2 vs ('a', 'b') 2: ('a','b') > (' ','cd') bytewise.
  EXPECT_EQ(r.merges[1].first, "a");
  EXPECT_EQ(r.merges[1].second, "b");
}

TEST(BpeTrainer, OverlappingPairsMergeLeftToRight) {
  // "aaaaa" (one word): (a,a) counts 4; merging gives [aa, aa, a], whose
  // pairs (aa,aa) and (aa,a) count 1 each; "aa" > "a" so (aa, aa) wins.
  const BpeTrainResult r = train("aaaaa", 256 + 2);
  ASSERT_EQ(r.merges.size(), 2u);
  EXPECT_EQ(r.merges[0], (std::pair<std::string, std::string>("a", "a")));
  EXPECT_EQ(r.merges[1], (std::pair<std::string, std::string>("aa", "aa")));
}

TEST(BpeTrainer, SpecialTokensAreNeverMergedAcross) {
  const BpeTrainResult r = train("xy<|s|>xy<|s|>z<|s|>z", 256 + 1 + 5, {"<|s|>"});
  EXPECT_EQ(r.tokens[0], "<|s|>");
  for (const auto& [a, b] : r.merges) {
    EXPECT_EQ((a + b).find('<'), std::string::npos) << a << "|" << b;
  }
}

TEST(BpeTrainer, RejectsTooSmallVocab) {
  BpeTrainOptions o;
  o.vocab_size = 100;
  EXPECT_FALSE(BpeTrainer::create(o).ok());
}

TEST(BpeTrainer, TokenizerJsonLoadsAndRoundTrips) {
  const std::string corpus = read_all(tokenizer_fixture("bpe-train/corpus.en.txt"));
  const BpeTrainResult r = train(corpus + "\n한국어 문장입니다. 한국어 🙂", 700, {"<|endoftext|>"});
  const auto path = std::filesystem::temp_directory_path() / "hanul_test_bpe_trainer.json";
  {
    std::ofstream out(path, std::ios::binary);
    out << bpe_tokenizer_json(r);
  }
  auto tok = Tokenizer::load(path.string());
  std::filesystem::remove(path);
  ASSERT_TRUE(tok.ok()) << tok.message();
  EXPECT_EQ(tok->n_vocab(), 700);
  for (const std::string text : {"iron cement is a ready for use paste", "  spaces\tand\n\nlines  ",
                                 "한국어 문장입니다 🙂 12345", "<|endoftext|>x"}) {
    const auto ids = tok->encode(text, false, false);
    EXPECT_EQ(tok->decode(ids), text);
  }
  // A frequent word of the corpus is one token.
  EXPECT_EQ(tok->encode(" the").size(), 1u);
  EXPECT_EQ(tok->encode("<|endoftext|>", false, true), std::vector<int32_t>{0});
}

}  // namespace
}  // namespace hanul
