// WordPiece (BERT): the basic tokenizer's word split and normalization, the
// greedy longest-piece spelling in both vocab spellings (GGUF "▁" starts,
// HF "##" continuations), [UNK] for a word that cannot be spelled, and
// decoding that glues continuation pieces.
#include "hanul/tokenizer/wordpiece.h"

#include <gtest/gtest.h>

#include "hanul/tokenizer/tokenizer.h"
#include "tokenizer_test_util.h"

namespace hanul {
namespace {

using Words = std::vector<std::string>;

TEST(WordPieceWords, SplitsAtWhitespacePunctuationAndCjk) {
  EXPECT_EQ(wordpiece_words("Hello, world!", true), (Words{"hello", ",", "world", "!"}));
  EXPECT_EQ(wordpiece_words("  a\tb\n\nc  ", true), (Words{"a", "b", "c"}));
  // ASCII symbols are punctuation to BERT; '$' and '+' are category S.
  EXPECT_EQ(wordpiece_words("a$b+c", true), (Words{"a", "$", "b", "+", "c"}));
  // Each CJK ideograph is a word; Hangul is not cut.
  EXPECT_EQ(wordpiece_words("中文ab", true), (Words{"中", "文", "ab"}));
  // U+3000 ideographic space is White_Space.
  EXPECT_EQ(wordpiece_words("a\u3000b", true), (Words{"a", "b"}));
}

TEST(WordPieceWords, LowercasesAndStripsAccents) {
  EXPECT_EQ(wordpiece_words("Führer ÉCOLE", true), (Words{"fuhrer", "ecole"}));
  // Already decomposed: the combining diaeresis U+0308 is dropped too.
  EXPECT_EQ(wordpiece_words("u\xCC\x88", true), (Words{"u"}));
  // Cased without lowercase: text stays as it is.
  EXPECT_EQ(wordpiece_words("Führer", false), (Words{"Führer"}));
}

TEST(WordPieceWords, DropsControlsAndReplacementChars) {
  // NUL, U+200B (format, Cf), U+FFFD and invalid bytes vanish without
  // splitting the word.
  EXPECT_EQ(wordpiece_words(std::string("ab\0cd", 5), true), (Words{"abcd"}));
  EXPECT_EQ(wordpiece_words("ab\u200Bcd", true), (Words{"abcd"}));
  EXPECT_EQ(wordpiece_words("ab\xEF\xBF\xBD" "cd\xFF", true), (Words{"abcd"}));
  EXPECT_TRUE(wordpiece_words("", true).empty());
}

Vocab make_vocab(const Words& texts) {
  Vocab v;
  for (const std::string& t : texts) v.tokens.push_back({t, 0.0f, TokenType::kNormal});
  v.tokens[0].type = TokenType::kControl;
  v.unk = 0;
  v.finalize();
  return v;
}

TEST(WordPiece, GgufSpellingLongestFirst) {
  const Vocab v = make_vocab({"[UNK]", "\u2581hug", "\u2581hugging", "ging", "gi", "ng", "s", "\u2581,"});
  const WordPiece wp = WordPiece::build(v, WordPieceOptions{});
  std::vector<int32_t> out;
  wp.encode(v, "Hugging hugs, hugx", out);
  // "hugging" whole; "hugs" = ▁hug + s; "," alone; "hugx" fails -> one [UNK].
  EXPECT_EQ(out, (std::vector<int32_t>{2, 1, 6, 7, 0}));
  EXPECT_EQ(wp.piece(v, 1), " hug");
  EXPECT_EQ(wp.piece(v, 3), "ging");
}

TEST(WordPiece, HfSpellingWithHashes) {
  const Vocab v = make_vocab({"[UNK]", "hug", "##ging", "##gi", "##ng", "ging"});
  WordPieceOptions o;
  o.word_prefix.clear();
  o.continuation = "##";
  const WordPiece wp = WordPiece::build(v, o);
  std::vector<int32_t> out;
  wp.encode(v, "hugging ging", out);
  // Inside a word only "##" pieces match; "ging" at a word start is the bare token.
  EXPECT_EQ(out, (std::vector<int32_t>{1, 2, 5}));
  EXPECT_EQ(wp.piece(v, 1), " hug");
  EXPECT_EQ(wp.piece(v, 2), "ging");
}

TEST(WordPiece, TooLongWordIsUnknown) {
  const Vocab v = make_vocab({"[UNK]", "\u2581a", "a"});
  WordPieceOptions o;
  o.max_chars_per_word = 4;
  const WordPiece wp = WordPiece::build(v, o);
  std::vector<int32_t> out;
  wp.encode(v, "aaaa aaaaa", out);
  EXPECT_EQ(out, (std::vector<int32_t>{1, 2, 2, 2, 0}));
}

TEST(WordPiece, BertGgufEncodesAndDecodes) {
  auto tok = Tokenizer::load(testing::tokenizer_fixture("ggml-vocab-bert-bge.gguf"));
  ASSERT_TRUE(tok.ok()) << tok.message();
  EXPECT_EQ(tok->kind_name(), "bert");
  // Ids from llama.cpp's bert-bge vectors ("Hello, world!").
  const auto ids = tok->encode("Hello, world!");
  EXPECT_EQ(ids, (std::vector<int32_t>{7592, 1010, 2088, 999}));
  EXPECT_EQ(tok->decode(ids), "hello , world !");
  // [CLS] ... [SEP] with add_special.
  const auto with = tok->encode("Hello", /*add_special=*/true);
  EXPECT_EQ(with, (std::vector<int32_t>{101, 7592, 102}));
  EXPECT_EQ(tok->decode(with), "hello");
  // A word of several pieces decodes glued: "3333" -> 21211 ("▁333") + 2509 ("3").
  const auto pieces = tok->encode("3333");
  ASSERT_EQ(pieces, (std::vector<int32_t>{21211, 2509}));
  EXPECT_EQ(tok->decode(pieces), "3333");
}

}  // namespace
}  // namespace hanul
