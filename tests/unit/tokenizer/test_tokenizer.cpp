// The front door: loading by file kind and folder, refusing what is not
// supported with a message that names it, and tokenizer.json giving the same
// ids as the GGUF it was written from (the llama.cpp vectors again).
#include "hanul/tokenizer/tokenizer.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>

#include "hanul/formats/gguf.h"
#include "tokenizer_test_util.h"

namespace hanul {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using testing::read_vectors;
using testing::tokenizer_fixture;

fs::path temp_dir(const std::string& name) {
  fs::path d = fs::temp_directory_path() / ("hanul_tok_" + name + "_" + std::to_string(::getpid()));
  fs::create_directories(d);
  return d;
}

void write(const fs::path& p, const std::string& s) { std::ofstream(p, std::ios::binary) << s; }

void expect_vectors(const Tokenizer& tok, const std::string& stem) {
  const auto cases = read_vectors(tokenizer_fixture(stem + ".inp"), tokenizer_fixture(stem + ".out"));
  ASSERT_GE(cases.size(), 40u);
  for (size_t i = 0; i < cases.size(); ++i) {
    EXPECT_EQ(tok.encode(cases[i].text), cases[i].ids) << stem << " case " << i << " '" << cases[i].text << "'";
    EXPECT_EQ(tok.decode(cases[i].ids), cases[i].text) << stem << " case " << i;
  }
}

// A GPT-2 tokenizer.json as HF tokenizers writes it, from the GGUF's vocab.
TEST(Tokenizer, HfByteLevelJsonMatchesGguf) {
  auto f = GgufFile::open(tokenizer_fixture("ggml-vocab-gpt-2.gguf"));
  ASSERT_TRUE(f.ok()) << f.message();
  const auto& tokens = *f->get_string_array("tokenizer.ggml.tokens");
  json vocab = json::object();
  for (size_t i = 0; i < tokens.size(); ++i) vocab[tokens[i]] = i;
  json j = {
      {"version", "1.0"},
      {"added_tokens", json::array({{{"id", 50256}, {"content", "<|endoftext|>"}, {"special", true},
                                     {"lstrip", false}, {"rstrip", false}, {"normalized", false},
                                     {"single_word", false}}})},
      {"normalizer", nullptr},
      {"pre_tokenizer", {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"trim_offsets", true},
                         {"use_regex", true}}},
      {"post_processor", {{"type", "ByteLevel"}}},
      {"decoder", {{"type", "ByteLevel"}}},
      {"model", {{"type", "BPE"}, {"dropout", nullptr}, {"unk_token", nullptr},
                 {"continuing_subword_prefix", nullptr}, {"end_of_word_suffix", nullptr},
                 {"fuse_unk", false}, {"byte_fallback", false}, {"vocab", vocab},
                 {"merges", *f->get_string_array("tokenizer.ggml.merges")}}},
  };
  const fs::path dir = temp_dir("gpt2");
  write(dir / "tokenizer.json", j.dump());
  auto tok = Tokenizer::load(dir.string());  // a folder: finds tokenizer.json
  ASSERT_TRUE(tok.ok()) << tok.message();
  EXPECT_EQ(tok->kind_name(), "hf-byte-bpe");
  EXPECT_EQ(tok->eos(), 50256);
  expect_vectors(*tok, "ggml-vocab-gpt-2.gguf");
  // The added token is special: matched only with parse_special.
  EXPECT_EQ(tok->encode("a<|endoftext|>", false, true).back(), 50256);
  EXPECT_NE(tok->encode("a<|endoftext|>", false, false).back(), 50256);
  fs::remove_all(dir);
}

// A Llama 2 tokenizer.json as transformers' LlamaConverter writes it: BPE
// over characters with byte_fallback, merges ranked by the merged piece's
// score (convert_slow_tokenizer.py SentencePieceExtractor), Prepend('▁') and
// Replace(' ', '▁') normalizers, BOS by TemplateProcessing.
TEST(Tokenizer, HfLlama2JsonMatchesGguf) {
  auto f = GgufFile::open(tokenizer_fixture("ggml-vocab-llama-spm.gguf"));
  ASSERT_TRUE(f.ok()) << f.message();
  const auto& tokens = *f->get_string_array("tokenizer.ggml.tokens");
  const auto scores = *f->get_float_array("tokenizer.ggml.scores");
  std::map<std::string, size_t> id_of;
  json vocab = json::object();
  for (size_t i = 0; i < tokens.size(); ++i) {
    vocab[tokens[i]] = i;
    id_of[tokens[i]] = i;
  }
  struct M {
    double score;
    size_t id, l, r;
  };
  std::vector<M> merges;
  for (size_t i = 0; i < tokens.size(); ++i) {
    const std::string& t = tokens[i];
    for (size_t k = 1; k < t.size(); ++k) {
      if ((static_cast<uint8_t>(t[k]) & 0xC0) == 0x80) continue;  // split at characters
      auto a = id_of.find(t.substr(0, k)), b = id_of.find(t.substr(k));
      if (a != id_of.end() && b != id_of.end()) merges.push_back({scores[i], i, a->second, b->second});
    }
  }
  std::stable_sort(merges.begin(), merges.end(), [](const M& x, const M& y) {
    if (x.score != y.score) return x.score > y.score;
    if (x.id != y.id) return x.id < y.id;
    return std::tie(x.l, x.r) < std::tie(y.l, y.r);
  });
  json jm = json::array();
  for (const M& m : merges) jm.push_back(json::array({tokens[m.l], tokens[m.r]}));
  auto added = [](int id, const char* s) {
    return json{{"id", id}, {"content", s}, {"special", true}, {"lstrip", false}, {"rstrip", false},
                {"normalized", false}, {"single_word", false}};
  };
  json j = {
      {"added_tokens", json::array({added(0, "<unk>"), added(1, "<s>"), added(2, "</s>")})},
      {"normalizer", {{"type", "Sequence"},
                      {"normalizers", json::array({{{"type", "Prepend"}, {"prepend", "\xE2\x96\x81"}},
                                                   {{"type", "Replace"}, {"pattern", {{"String", " "}}},
                                                    {"content", "\xE2\x96\x81"}}})}}},
      {"pre_tokenizer", nullptr},
      {"post_processor", {{"type", "TemplateProcessing"},
                          {"single", json::array({{{"SpecialToken", {{"id", "<s>"}, {"type_id", 0}}}},
                                                  {{"Sequence", {{"id", "A"}, {"type_id", 0}}}}})}}},
      {"decoder", nullptr},
      {"model", {{"type", "BPE"}, {"unk_token", "<unk>"}, {"fuse_unk", true}, {"byte_fallback", true},
                 {"vocab", vocab}, {"merges", jm}}},
  };
  const fs::path dir = temp_dir("llama2");
  write(dir / "tokenizer.json", j.dump());
  auto tok = Tokenizer::load((dir / "tokenizer.json").string());
  ASSERT_TRUE(tok.ok()) << tok.message();
  EXPECT_EQ(tok->kind_name(), "hf-bpe");
  EXPECT_EQ(tok->bos(), 1);
  EXPECT_TRUE(tok->add_bos());
  expect_vectors(*tok, "ggml-vocab-llama-spm.gguf");
  EXPECT_EQ(tok->encode("Hello", true).front(), 1);
  fs::remove_all(dir);
}

TEST(Tokenizer, RefusesWhatItDoesNotSupportByName) {
  const fs::path dir = temp_dir("bad");
  write(dir / "wp.json", R"({"model": {"type": "WordPiece", "vocab": {}}})");
  auto wp = Tokenizer::load((dir / "wp.json").string());
  ASSERT_FALSE(wp.ok());
  EXPECT_NE(wp.message().find("WordPiece"), std::string::npos) << wp.message();

  write(dir / "broken.json", "{\"model\": ");
  auto broken = Tokenizer::load((dir / "broken.json").string());
  ASSERT_FALSE(broken.ok());
  EXPECT_NE(broken.message().find("broken.json"), std::string::npos) << broken.message();

  write(dir / "pre.json", R"({"model": {"type": "BPE", "vocab": {"a": 0}, "merges": []},
                             "pre_tokenizer": {"type": "BertPreTokenizer"}})");
  auto pre = Tokenizer::load((dir / "pre.json").string());
  ASSERT_FALSE(pre.ok());
  EXPECT_NE(pre.message().find("BertPreTokenizer"), std::string::npos) << pre.message();

  write(dir / "garbage.model", "not a tokenizer at all\n");
  EXPECT_FALSE(Tokenizer::load((dir / "garbage.model").string()).ok());

  auto empty_dir = Tokenizer::load(dir.string() + "/nothing");
  EXPECT_FALSE(empty_dir.ok());
  fs::remove_all(dir);
}

TEST(Tokenizer, KnowsItsSpecialTokens) {
  auto tok = Tokenizer::load(tokenizer_fixture("llama3-tokenizer.model"));
  ASSERT_TRUE(tok.ok()) << tok.message();
  EXPECT_EQ(tok->n_vocab(), 128256);
  EXPECT_EQ(tok->bos(), 128000);
  EXPECT_EQ(tok->token_id("<|eot_id|>"), 128009);
  EXPECT_TRUE(tok->is_eog(128009));
  EXPECT_TRUE(tok->is_control(128000));
  const auto ids = tok->encode("<|start_header_id|>user<|end_header_id|>", true, true);
  EXPECT_EQ(ids, (std::vector<int32_t>{128000, 128006, 882, 128007}));
  EXPECT_EQ(tok->decode(ids), "user");
  EXPECT_EQ(tok->decode(ids, true), "<|begin_of_text|><|start_header_id|>user<|end_header_id|>");
  // Korean round-trips through byte-level BPE.
  const std::string ko = "대한민국 헌법 제1조 ① 대한민국은 민주공화국이다.";
  EXPECT_EQ(tok->decode(tok->encode(ko)), ko);
}

}  // namespace
}  // namespace hanul
