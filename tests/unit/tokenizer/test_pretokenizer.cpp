#include "hanul/tokenizer/pretokenizer.h"

#include <gtest/gtest.h>

namespace hanul {
namespace {

std::vector<std::string> words(const PreTokenizer& p, std::string_view text) {
  std::vector<std::pair<size_t, size_t>> w;
  p.split(text, w);
  std::vector<std::string> out;
  for (auto [o, n] : w) out.emplace_back(text.substr(o, n));
  return out;
}

TEST(PreTokenizer, Gpt2SplitsWordsSpacesAndContractions) {
  auto p = PreTokenizer::for_family("gpt-2");
  ASSERT_TRUE(p.ok()) << p.message();
  EXPECT_EQ(words(*p, "Hello world's  3.14!"),
            (std::vector<std::string>{"Hello", " world", "'s", " ", " 3", ".", "14", "!"}));
}

TEST(PreTokenizer, Llama3GroupsDigitsByThreeAndKeepsHangulWords) {
  auto p = PreTokenizer::for_family("llama-bpe");
  ASSERT_TRUE(p.ok()) << p.message();
  EXPECT_EQ(words(*p, "1234567 안녕하세요 세계\n\n"),
            (std::vector<std::string>{"123", "456", "7", " 안녕하세요", " 세계", "\n\n"}));
}

TEST(PreTokenizer, WhitespaceIsUnicodeWhiteSpace) {
  // U+0085 (NEL) and U+3000 are White_Space. Were NEL not \s (PCRE2's own
  // \s), " ?[^\s\p{L}\p{N}]+" would take "NEL NEL" as one word.
  auto p = PreTokenizer::for_family("gpt-2");
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(words(*p, "a\xC2\x85\xC2\x85" "b"),
            (std::vector<std::string>{"a", "\xC2\x85", "\xC2\x85", "b"}));
  EXPECT_EQ(words(*p, "a\xE3\x80\x80\xE3\x80\x80"), (std::vector<std::string>{"a", "\xE3\x80\x80\xE3\x80\x80"}));
}

TEST(PreTokenizer, RegexesApplyInTurnWithinPieces) {
  // deepseek-coder: newlines first, then letters, punctuation, CJK, digits.
  auto p = PreTokenizer::for_family("deepseek-coder");
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(words(*p, "ab 12\ncd"), (std::vector<std::string>{"ab", " ", "1", "2", "\n", "cd"}));
}

TEST(PreTokenizer, UnknownFamilyAndBadRegexAreErrors) {
  auto p = PreTokenizer::for_family("no-such-family");
  ASSERT_FALSE(p.ok());
  EXPECT_NE(p.message().find("no-such-family"), std::string::npos);
  auto q = PreTokenizer::from_regexes({"(unclosed"});
  ASSERT_FALSE(q.ok());
  EXPECT_NE(q.message().find("(unclosed"), std::string::npos);
}

}  // namespace
}  // namespace hanul
