#include "hanul/base/utf8.h"

#include <gtest/gtest.h>

namespace hanul {
namespace {

TEST(Utf8, DecodesAndEncodesEveryLength) {
  for (uint32_t cp : {0x41u, 0xE9u, 0xD55Cu, 0x1F600u, 0x10FFFFu}) {
    const std::string s = utf8_encode(cp);
    uint32_t back = 0;
    size_t len = 0;
    ASSERT_TRUE(utf8_decode(s, 0, &back, &len));
    EXPECT_EQ(back, cp);
    EXPECT_EQ(len, s.size());
    EXPECT_EQ(utf8_len(static_cast<uint8_t>(s[0])), s.size());
  }
}

TEST(Utf8, RefusesOverlongSurrogatesAndTruncation) {
  uint32_t cp;
  size_t len;
  EXPECT_FALSE(utf8_decode("\xC0\x80", 0, &cp, &len));          // overlong NUL
  EXPECT_FALSE(utf8_decode("\xED\xA0\x80", 0, &cp, &len));      // surrogate D800
  EXPECT_FALSE(utf8_decode("\xF4\x90\x80\x80", 0, &cp, &len));  // past U+10FFFF
  EXPECT_FALSE(utf8_decode("\xED\x95", 0, &cp, &len));          // truncated
  EXPECT_EQ(len, 1u);
  EXPECT_EQ(utf8_to_codepoints("a\xFF" "b"), (std::vector<uint32_t>{'a', kUtf8Replacement, 'b'}));
  EXPECT_FALSE(utf8_is_valid("\x80"));
  EXPECT_TRUE(utf8_is_valid("한국어 ok"));
}

TEST(Utf8, IncompleteTailHoldsOnlyValidPrefixes) {
  const std::string han = "한";  // ED 95 9C
  EXPECT_EQ(utf8_incomplete_tail(""), 0u);
  EXPECT_EQ(utf8_incomplete_tail("ab"), 0u);
  EXPECT_EQ(utf8_incomplete_tail(han), 0u);
  EXPECT_EQ(utf8_incomplete_tail(han.substr(0, 1)), 1u);
  EXPECT_EQ(utf8_incomplete_tail("x" + han.substr(0, 2)), 2u);
  EXPECT_EQ(utf8_incomplete_tail("\xED\xA0"), 0u);  // would be a surrogate: never completes
  EXPECT_EQ(utf8_incomplete_tail("\xFF"), 0u);
  EXPECT_EQ(utf8_incomplete_tail("\xF0\x9F\x98"), 3u);  // 3 of the 4 bytes of an emoji
}

}  // namespace
}  // namespace hanul
