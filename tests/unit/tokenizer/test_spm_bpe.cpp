// SentencePiece BPE on real vocabularies: Llama 2 (32000, byte fallback) and
// stories260K (512 tokens: 3 specials, 256 bytes, 253 merges).
#include "hanul/tokenizer/spm_bpe.h"

#include "hanul/base/utf8.h"

#include <gtest/gtest.h>

#include "hanul/tokenizer/tokenizer.h"
#include "tokenizer_test_util.h"

namespace hanul {
namespace {

std::string fixture(const std::string& name) { return std::string(HANUL_SOURCE_DIR) + "/tests/fixtures/" + name; }

TEST(SpmBpe, Stories260KRoundTripsAndReencodesItsOwnOutput) {
  auto tok = Tokenizer::load(fixture("stories260K-f32.gguf"));
  ASSERT_TRUE(tok.ok()) << tok.message();
  EXPECT_EQ(tok->n_vocab(), 512);
  EXPECT_EQ(tok->bos(), 1);
  EXPECT_EQ(tok->eos(), 2);
  // Greedy ids the model produces after BOS (data/MANIFEST.md, checked
  // against Karpathy's published sample). Their text must encode back to
  // the same ids: the model was trained on this tokenizer's output.
  const std::vector<int32_t> ids = {403, 407, 261, 378, 432, 383, 286, 261, 376, 298, 315, 421, 395, 317};
  const std::string text = tok->decode(ids);
  EXPECT_EQ(text, "Once upon a time, there was a little girl named Lily");
  EXPECT_EQ(tok->encode(text), ids);
  std::vector<int32_t> with_bos = {1};
  with_bos.insert(with_bos.end(), ids.begin(), ids.end());
  EXPECT_EQ(tok->encode(text, /*add_special=*/true), with_bos);
}

TEST(SpmBpe, HangulFallsBackToBytesAndDecodesExactly) {
  auto tok = Tokenizer::load(fixture("stories260K-f32.gguf"));
  ASSERT_TRUE(tok.ok());
  // stories260K has no Hangul pieces: every syllable is 3 <0xXX> tokens.
  const std::string text = "한국어";
  const auto ids = tok->encode(text);
  ASSERT_EQ(ids.size(), 1u + 9u);  // "▁" then 9 bytes
  for (size_t i = 1; i < ids.size(); ++i) {
    EXPECT_EQ(tok->token_to_piece(ids[i]).size(), 1u);
    EXPECT_EQ(static_cast<uint8_t>(tok->token_to_piece(ids[i])[0]), static_cast<uint8_t>(text[i - 1]));
  }
  EXPECT_EQ(tok->decode(ids), text);
}

TEST(SpmBpe, StreamDecoderHoldsSplitSyllables) {
  auto tok = Tokenizer::load(fixture("stories260K-f32.gguf"));
  ASSERT_TRUE(tok.ok());
  const std::string text = "Lily 한국 ok";
  const auto ids = tok->encode(text);
  TokenStreamDecoder stream(*tok);
  std::string got;
  for (int32_t id : ids) {
    const std::string part = stream.push(id);
    EXPECT_TRUE(utf8_is_valid(part)) << "broken UTF-8 emitted after id " << id;
    got += part;
  }
  got += stream.flush();
  EXPECT_EQ(got, text);
}

TEST(SpmBpe, StreamDecoderReplacesBytesThatNeverComplete) {
  auto tok = Tokenizer::load(fixture("stories260K-f32.gguf"));
  ASSERT_TRUE(tok.ok());
  const int32_t ed = spm_byte_token(tok->vocab(), 0xED);
  const int32_t a = tok->token_id("a");
  ASSERT_GE(ed, 0);
  ASSERT_GE(a, 0);
  TokenStreamDecoder stream(*tok);
  EXPECT_EQ(stream.push(ed), "");                  // could start a syllable: held
  EXPECT_EQ(stream.push(a), "\xEF\xBF\xBD" "a");   // it did not: U+FFFD, then 'a'
  EXPECT_EQ(stream.push(ed), "");
  EXPECT_EQ(stream.flush(), "\xEF\xBF\xBD");
}

TEST(SpmBpe, ControlTokensAreParsedOnlyWhenAsked) {
  auto tok = Tokenizer::load(testing::tokenizer_fixture("ggml-vocab-llama-spm.gguf"));
  ASSERT_TRUE(tok.ok());
  const auto plain = tok->encode("<s>hi", false, false);
  const auto parsed = tok->encode("<s>hi", false, true);
  EXPECT_NE(plain.front(), 1);
  ASSERT_GE(parsed.size(), 2u);
  EXPECT_EQ(parsed[0], 1);
  // After a special token the dummy prefix comes back: "▁hi".
  EXPECT_EQ(std::vector<int32_t>(parsed.begin() + 1, parsed.end()), tok->encode("hi"));
  EXPECT_EQ(tok->decode(parsed), "hi");
  EXPECT_EQ(tok->decode(parsed, /*special=*/true), "<s> hi");
}

}  // namespace
}  // namespace hanul
