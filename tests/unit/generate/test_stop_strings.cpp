// StopMatcher: a stop string split across pieces is never printed, the text before it comes
// out whole, and text that merely looked like a stop string's start is released later.
#include "hanul/generate/stop_strings.h"

#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

namespace hanul {
namespace {

struct Run {
  std::string shown;  // everything emitted, in order
  bool stopped = false;
  int stop_index = -1;
};

Run stream(StopMatcher& m, const std::vector<std::string>& pieces) {
  Run r;
  for (const auto& p : pieces) {
    auto step = m.push(p);
    r.shown += step.text;
    if (step.stopped) {
      r.stopped = true;
      r.stop_index = step.stop_index;
      return r;
    }
  }
  r.shown += m.flush();
  return r;
}

TEST(StopMatcher, SplitAcrossPieces) {
  StopMatcher m({"\nUser:"});
  std::vector<std::string> pieces = {"Hello", " there", "\n", "Us", "er", ": more"};
  std::string shown;
  auto s1 = m.push(pieces[0]);
  EXPECT_EQ(s1.text, "Hello");
  shown += s1.text + m.push(pieces[1]).text;
  auto s3 = m.push(pieces[2]);
  EXPECT_EQ(s3.text, "");  // "\n" may start the stop string: held
  auto s4 = m.push(pieces[3]);
  EXPECT_EQ(s4.text, "");
  EXPECT_EQ(m.held(), "\nUs");
  m.push(pieces[4]);
  auto s6 = m.push(pieces[5]);
  EXPECT_TRUE(s6.stopped);
  EXPECT_EQ(s6.text, "");
  EXPECT_EQ(shown, "Hello there");
  EXPECT_EQ(m.push("anything").text, "");
  EXPECT_EQ(m.flush(), "");
}

TEST(StopMatcher, FalseStartIsReleased) {
  StopMatcher m({"###"});
  auto r = stream(m, {"a#", "#b", "c"});
  EXPECT_FALSE(r.stopped);
  EXPECT_EQ(r.shown, "a##bc");
  StopMatcher m2({"###"});
  EXPECT_EQ(m2.push("x##").text, "x");
  EXPECT_EQ(m2.push("#").text, "");
  EXPECT_TRUE(m2.stopped());
}

TEST(StopMatcher, TextBeforeTheStopInTheSamePiece) {
  StopMatcher m({"</s>"});
  auto r = stream(m, {"The end.</s>ignored"});
  EXPECT_TRUE(r.stopped);
  EXPECT_EQ(r.shown, "The end.");
}

TEST(StopMatcher, MultipleStopsEarliestWins) {
  StopMatcher m({"END", "STOP", "ST"});
  auto r = stream(m, {"abc S", "TOP and END"});
  EXPECT_TRUE(r.stopped);
  EXPECT_EQ(r.shown, "abc ");
  EXPECT_TRUE(r.stop_index == 1 || r.stop_index == 2);
  StopMatcher m2({"world", "lo w"});
  auto r2 = stream(m2, {"hel", "lo", " wor", "ld"});
  EXPECT_TRUE(r2.stopped);
  EXPECT_EQ(r2.shown, "hel");
  EXPECT_EQ(r2.stop_index, 1);
}

TEST(StopMatcher, HangulPieces) {
  // "안녕" is EC 95 88 EB 85 95; pieces split inside a syllable too (byte tokens).
  StopMatcher m({"안녕히"});
  std::string text = "네, 안녕하세요. 안녕히 가세요";
  std::vector<std::string> pieces;
  for (size_t i = 0; i < text.size(); i += 2) pieces.push_back(text.substr(i, 2));
  auto r = stream(m, pieces);
  EXPECT_TRUE(r.stopped);
  EXPECT_EQ(r.shown, "네, 안녕하세요. ");
  StopMatcher m2({"사용자:"});
  auto r2 = stream(m2, {"답", "변", "입니다", "\n사", "용", "자", ":", " 질문"});
  EXPECT_EQ(r2.shown, "답변입니다\n");
}

TEST(StopMatcher, NoStopsPassesEverything) {
  StopMatcher m({});
  auto r = stream(m, {"a", "b"});
  EXPECT_EQ(r.shown, "ab");
  StopMatcher e({""});
  EXPECT_EQ(stream(e, {"x"}).shown, "x");
}

TEST(StopMatcher, RandomSplitsMatchTheWholeText) {
  // For any split of a text into pieces, the shown text equals the text cut at the first
  // stop string, and nothing of a stop string is ever shown.
  std::mt19937 rng(17);
  const std::vector<std::string> stops = {"<|eot|>", "\n\n", "끝."};
  const char* alphabet[] = {"a", "<", "|", "e", "o", "t", ">", "\n", "끝", ".", " "};
  for (int trial = 0; trial < 2000; ++trial) {
    std::string text;
    int n = 1 + int(rng() % 30);
    for (int i = 0; i < n; ++i) text += alphabet[rng() % 11];
    size_t first = std::string::npos;
    for (const auto& s : stops) first = std::min(first, text.find(s));
    std::string expected = first == std::string::npos ? text : text.substr(0, first);
    std::vector<std::string> pieces;
    for (size_t i = 0; i < text.size();) {
      size_t len = 1 + rng() % 5;
      pieces.push_back(text.substr(i, len));
      i += len;
    }
    StopMatcher m(stops);
    std::string shown;
    bool stopped = false;
    for (const auto& p : pieces) {
      auto st = m.push(p);
      shown += st.text;
      // What is shown is always a prefix of the expected output.
      ASSERT_EQ(expected.compare(0, shown.size(), shown), 0) << text;
      if (st.stopped) {
        stopped = true;
        break;
      }
    }
    if (!stopped) shown += m.flush();
    EXPECT_EQ(shown, expected) << text;
    EXPECT_EQ(stopped, first != std::string::npos);
  }
}

}  // namespace
}  // namespace hanul
