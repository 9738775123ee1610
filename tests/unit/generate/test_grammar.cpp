// GBNF grammar: parsing (with errors that name line and column), recognition byte by byte
// with UTF-8 split across pieces, repetition bounds, and token masks.
#include "hanul/generate/grammar.h"

#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

namespace hanul {
namespace {

GrammarMatcher matcher(const std::string& text) {
  auto g = Grammar::parse(text);
  EXPECT_TRUE(g.ok()) << g.message();
  return GrammarMatcher(*g);
}

bool full_match(const std::string& grammar, const std::string& input) {
  auto m = matcher(grammar);
  return m.accept_bytes(input) && m.is_complete();
}

TEST(Grammar, LiteralsAndAlternatives) {
  const std::string g = "root ::= \"yes\" | \"no\" | \"maybe\\n\"";
  EXPECT_TRUE(full_match(g, "yes"));
  EXPECT_TRUE(full_match(g, "no"));
  EXPECT_TRUE(full_match(g, "maybe\n"));
  EXPECT_FALSE(full_match(g, "ye"));
  EXPECT_FALSE(full_match(g, "yess"));
  auto m = matcher(g);
  EXPECT_TRUE(m.accept_bytes("ye"));
  EXPECT_FALSE(m.is_complete());
  EXPECT_FALSE(m.accept_bytes("x"));  // refused, state unchanged
  EXPECT_TRUE(m.accept_bytes("s"));
  EXPECT_TRUE(m.is_finished());
}

TEST(Grammar, ClassesRangesNegationAny) {
  EXPECT_TRUE(full_match("root ::= [a-c0-9_]+", "ab9_c"));
  EXPECT_FALSE(full_match("root ::= [a-c0-9_]+", "abd"));
  EXPECT_FALSE(full_match("root ::= [a-c0-9_]+", ""));
  EXPECT_TRUE(full_match("root ::= [^\"\\\\]*", "no quotes here"));
  EXPECT_FALSE(full_match("root ::= [^\"\\\\]*", "a\"b"));
  EXPECT_TRUE(full_match("root ::= . . .", "a한b"));
  EXPECT_TRUE(full_match("root ::= [\\x41-\\x43] [\\u00e9] [\\]\\[-]", "Bé-"));
  EXPECT_TRUE(full_match("root ::= [\\]\\[-]+", "]-["));
}

TEST(Grammar, RepetitionBounds) {
  const std::string g = "root ::= \"a\"{2,4} \"b\"? [0-9]{3} (\"x\" | \"yz\"){1,}";
  EXPECT_TRUE(full_match(g, "aa123x"));
  EXPECT_TRUE(full_match(g, "aaaab123yzxyz"));
  EXPECT_FALSE(full_match(g, "a123x"));
  EXPECT_FALSE(full_match(g, "aaaaa123x"));
  EXPECT_FALSE(full_match(g, "aa12x"));
  EXPECT_FALSE(full_match(g, "aa123"));
  EXPECT_TRUE(full_match("root ::= \"a\"{0,} \"b\"{3}", "aaaabbb"));
  EXPECT_TRUE(full_match("root ::= \"a\"{0}", ""));
}

TEST(Grammar, RulesCommentsAndMultiLineGroups) {
  const std::string g = R"(# a list of words
root ::= word ("," ws word)*   # trailing comment
word ::= [a-z]+
ws   ::= (
  " " |
  "\t"
)?
)";
  EXPECT_TRUE(full_match(g, "ab,cd, ef,\tgh"));
  EXPECT_FALSE(full_match(g, "ab,,cd"));
}

TEST(Grammar, Utf8SplitAcrossPieces) {
  // 한 = ED 95 9C; 글 = EA B8 80
  auto m = matcher("root ::= [가-힣]+ \"!\"");
  std::string han = "한글";
  EXPECT_TRUE(m.accept_bytes(han.substr(0, 1)));
  EXPECT_FALSE(m.is_complete());
  EXPECT_TRUE(m.accept_bytes(han.substr(1, 3)));
  EXPECT_TRUE(m.accept_bytes(han.substr(4)));
  EXPECT_FALSE(m.accept_bytes("\xE3"));  // a lead byte of U+3000..U+3FFF: no Hangul syllable
  EXPECT_FALSE(m.accept_bytes("\x80"));  // a lone continuation byte
  EXPECT_TRUE(m.accept_bytes("!"));
  EXPECT_TRUE(m.is_complete());
  // A Hangul literal in the grammar text, and an invalid sequence refused.
  EXPECT_TRUE(full_match("root ::= \"안녕\" [^a-z]", "안녕!"));
  EXPECT_FALSE(full_match("root ::= .", "\xC0\x80"));  // overlong NUL
}

TEST(Grammar, ErrorsNameLineAndColumn) {
  auto e1 = Grammar::parse("root ::= \"a\"\nfoo = \"b\"\n");
  ASSERT_FALSE(e1.ok());
  EXPECT_NE(e1.message().find("line 2, column 5"), std::string::npos) << e1.message();
  EXPECT_NE(e1.message().find("::="), std::string::npos);
  auto e2 = Grammar::parse("root ::= item\n");
  ASSERT_FALSE(e2.ok());
  EXPECT_NE(e2.message().find("'item' is used but never defined"), std::string::npos);
  EXPECT_NE(e2.message().find("line 1, column 10"), std::string::npos) << e2.message();
  auto e3 = Grammar::parse("root ::= \"abc\n");
  ASSERT_FALSE(e3.ok());
  EXPECT_NE(e3.message().find("line 1"), std::string::npos) << e3.message();
  auto e4 = Grammar::parse("root ::= [a-\n");
  EXPECT_FALSE(e4.ok());
  auto e5 = Grammar::parse("root ::= (\"a\" | \"b\"\n");
  ASSERT_FALSE(e5.ok());
  EXPECT_NE(e5.message().find("expected ')'"), std::string::npos) << e5.message();
  auto e6 = Grammar::parse("root ::= * \"a\"");
  ASSERT_FALSE(e6.ok());
  EXPECT_NE(e6.message().find("column 10"), std::string::npos) << e6.message();
  auto e7 = Grammar::parse("root ::= \"\\q\"");
  ASSERT_FALSE(e7.ok());
  EXPECT_NE(e7.message().find("unknown escape"), std::string::npos);
  auto e8 = Grammar::parse("start ::= \"a\"");
  ASSERT_FALSE(e8.ok());
  EXPECT_NE(e8.message().find("no rule named 'root'"), std::string::npos);
  auto e9 = Grammar::parse("root ::= root \"a\" | \"b\"");
  ASSERT_FALSE(e9.ok());
  EXPECT_NE(e9.message().find("left-recursive"), std::string::npos) << e9.message();
  auto e10 = Grammar::parse("root ::= \"a\"{3,1}");
  EXPECT_FALSE(e10.ok());
  auto e11 = Grammar::parse("root ::= \"a\"\nroot ::= \"b\"");
  ASSERT_FALSE(e11.ok());
  EXPECT_NE(e11.message().find("defined twice"), std::string::npos);
}

TEST(Grammar, TokenMask) {
  auto m = matcher("root ::= \"{\" [0-9]+ \"}\"");
  std::vector<std::string> pieces = {"{", "{1", "12", "}", "a", "", "1}", "{}", "\xE2\x82"};
  std::vector<int32_t> eog = {5};
  auto ok = m.allowed(pieces, eog);
  EXPECT_EQ(ok, (std::vector<bool>{true, true, false, false, false, false, false, false, false}));
  ASSERT_TRUE(m.accept_bytes("{1"));
  ok = m.allowed(pieces, eog);
  EXPECT_EQ(ok, (std::vector<bool>{false, false, true, true, false, false, true, false, false}));
  ASSERT_TRUE(m.accept_bytes("2}"));
  ok = m.allowed(pieces, eog);
  EXPECT_EQ(ok, (std::vector<bool>{false, false, false, false, false, true, false, false, false}));
  std::vector<float> logits(10, 1.0f);  // a padded vocabulary: ids past the pieces are masked
  m.mask_logits(logits, pieces, eog);
  for (int i = 0; i < 10; ++i) EXPECT_EQ(std::isinf(logits[i]), i != 5) << i;
}

TEST(Grammar, AmbiguousGrammarStaysSmall) {
  // Several parses of the same text stay alive together without blowing up.
  const std::string g = "root ::= (\"a\" | \"aa\" | \"a\" \"a\")* \"b\"";
  std::string input(200, 'a');
  EXPECT_TRUE(full_match(g, input + "b"));
}

}  // namespace
}  // namespace hanul

namespace hanul {
namespace {

TEST(Grammar, SurrogatesRefusedAtTheSecondByte) {
  auto g = Grammar::parse("root ::= .+");
  ASSERT_TRUE(g.ok());
  GrammarMatcher m(*g);
  EXPECT_TRUE(m.can_accept("\xED\x9F"));   // U+D7C0..U+D7FF: fine
  EXPECT_FALSE(m.can_accept("\xED\xA0"));  // U+D800..: surrogates
  EXPECT_FALSE(m.can_accept("\xE0\x80"));  // overlong
  EXPECT_FALSE(m.can_accept("\xF4\x90"));  // past U+10FFFF
  EXPECT_TRUE(m.can_accept("\xF0\x9F\x98\x80"));
}

}  // namespace
}  // namespace hanul

namespace hanul {
namespace {

TEST(Grammar, MinBytesToComplete) {
  // A recursive rule, a repetition, a class of 3-byte characters and a negated class.
  auto g = Grammar::parse(R"g(root ::= "[" item ("," item)* "]"
item ::= "n" | "(" item ")" | [가-힣]{2} | "\"" [^"]* "\"")g");
  ASSERT_TRUE(g.ok()) << g.message();
  GrammarMatcher m(*g);
  EXPECT_EQ(m.min_bytes_to_complete(), 3u);  // [n]
  EXPECT_EQ(m.min_bytes_to_complete_after("[(("), 4u);  // n))]
  EXPECT_EQ(m.min_bytes_to_complete_after("[가"), 4u);  // one more syllable and ]
  EXPECT_EQ(m.min_bytes_to_complete_after("[\xEA"), 6u);  // two continuation bytes, 3, ]
  EXPECT_EQ(m.min_bytes_to_complete_after("[\"abc"), 2u);
  EXPECT_EQ(m.min_bytes_to_complete_after("[x"), GrammarMatcher::kNever);
  ASSERT_TRUE(m.accept_bytes("[n,n]"));
  EXPECT_EQ(m.min_bytes_to_complete(), 0u);
  EXPECT_EQ(m.min_bytes_to_complete_after("x"), GrammarMatcher::kNever);
  // A rule that can never finish.
  auto loop = Grammar::parse("root ::= \"a\" root");
  ASSERT_TRUE(loop.ok()) << loop.message();
  EXPECT_EQ(GrammarMatcher(*loop).min_bytes_to_complete(), GrammarMatcher::kNever);
}

}  // namespace
}  // namespace hanul
