// Every llama.cpp tokenizer test vector (models/ggml-vocab-*.gguf.inp/.out
// at c392e509): encode with add_special=false, parse_special=false must give
// the recorded ids, case by case; decode must give the text back where the
// tokenizer is lossless.
#include <gtest/gtest.h>

#include <filesystem>

#include "hanul/tokenizer/tokenizer.h"
#include "tokenizer_test_util.h"

namespace hanul {
namespace {

using testing::read_vectors;
using testing::tokenizer_fixture;

std::string show(const std::vector<int32_t>& ids) {
  std::string s;
  for (int32_t id : ids) s += std::to_string(id) + " ";
  return s;
}

struct VocabParam {
  const char* vocab;    // file under tests/fixtures/tokenizer
  const char* vectors;  // stem of the .inp/.out pair
  bool lossless;        // decode(encode(x)) == x for every case
};

class TokenizerVectors : public ::testing::TestWithParam<VocabParam> {};

TEST_P(TokenizerVectors, EveryCaseMatches) {
  const VocabParam& p = GetParam();
  auto tok = Tokenizer::load(tokenizer_fixture(p.vocab));
  ASSERT_TRUE(tok.ok()) << tok.message();
  const auto cases = read_vectors(tokenizer_fixture(std::string(p.vectors) + ".inp"),
                                  tokenizer_fixture(std::string(p.vectors) + ".out"));
  ASSERT_GE(cases.size(), 40u);
  int failed = 0;
  for (size_t i = 0; i < cases.size(); ++i) {
    const auto ids = tok->encode(cases[i].text, /*add_special=*/false, /*parse_special=*/false);
    EXPECT_EQ(ids, cases[i].ids) << p.vocab << " case " << i << " text '" << cases[i].text
                                 << "'\n  got      " << show(ids) << "\n  expected "
                                 << show(cases[i].ids);
    if (ids != cases[i].ids) ++failed;
    if (p.lossless) {
      EXPECT_EQ(tok->decode(ids), cases[i].text) << p.vocab << " case " << i;
    }
  }
  EXPECT_EQ(failed, 0) << p.vocab << ": " << failed << " of " << cases.size() << " cases differ";
}

INSTANTIATE_TEST_SUITE_P(
    LlamaCpp, TokenizerVectors,
    ::testing::Values(VocabParam{"ggml-vocab-llama-spm.gguf", "ggml-vocab-llama-spm.gguf", true},
                      VocabParam{"ggml-vocab-gpt-2.gguf", "ggml-vocab-gpt-2.gguf", true},
                      VocabParam{"ggml-vocab-mpt.gguf", "ggml-vocab-mpt.gguf", true},
                      VocabParam{"ggml-vocab-starcoder.gguf", "ggml-vocab-starcoder.gguf", true},
                      VocabParam{"ggml-vocab-refact.gguf", "ggml-vocab-refact.gguf", true},
                      VocabParam{"ggml-vocab-deepseek-coder.gguf", "ggml-vocab-deepseek-coder.gguf", true},
                      VocabParam{"llama3-tokenizer.model", "ggml-vocab-llama-bpe.gguf", true},
                      // WordPiece lowercases and strips accents: not lossless.
                      VocabParam{"ggml-vocab-bert-bge.gguf", "ggml-vocab-bert-bge.gguf", false},
                      // Llama 2's own SentencePiece model must agree with its GGUF.
                      VocabParam{"llama2-tokenizer.model", "ggml-vocab-llama-spm.gguf", true}),
    [](const ::testing::TestParamInfo<VocabParam>& info) {
      std::string n = info.param.vocab;
      if (n.starts_with("ggml-vocab-")) n = n.substr(11);
      for (char& c : n) {
        if (!isalnum(static_cast<unsigned char>(c))) c = '_';
      }
      return n;
    });

}  // namespace
}  // namespace hanul
