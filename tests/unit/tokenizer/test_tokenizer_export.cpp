// tokenizer_export: a vocabulary written as GGUF metadata and as
// tokenizer.json must tokenize exactly as the source (llama.cpp's vectors),
// in both directions and round trips; plus the NFC normalizer.
#include "hanul/tokenizer/tokenizer_export.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

#include "hanul/formats/gguf.h"
#include "hanul/tokenizer/tokenizer.h"
#include "hanul/tokenizer/unicode_nfc.h"
#include "tokenizer_test_util.h"

namespace hanul {
namespace {

namespace fs = std::filesystem;
using testing::read_vectors;
using testing::tokenizer_fixture;

class ExportTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("hanul_test_tok_export_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  fs::path dir_;
};

TokenizerExport load_export(const std::string& path) {
  auto t = load_tokenizer_for_export(path);
  EXPECT_TRUE(t.ok()) << t.message();
  EXPECT_TRUE(t.ok() && t->has_value()) << path << " should carry a tokenizer";
  return t.ok() && t->has_value() ? std::move(**t) : TokenizerExport{};
}

std::string write_gguf(const TokenizerExport& t, const fs::path& path, int64_t n_vocab = 0) {
  GgufWriter w;
  w.set_string("general.architecture", "llama");
  Status s = write_gguf_tokenizer(t, w, n_vocab);
  EXPECT_TRUE(s.ok()) << s.message();
  EXPECT_TRUE(w.write(path.string()).ok());
  return path.string();
}

// Every llama.cpp vector of `stem` encodes to its recorded ids with the
// tokenizer at `path`, and decodes back.
void expect_vectors(const std::string& path, const std::string& stem) {
  auto tok = Tokenizer::load(path);
  ASSERT_TRUE(tok.ok()) << tok.message();
  const auto cases = read_vectors(tokenizer_fixture(stem + ".inp"), tokenizer_fixture(stem + ".out"));
  ASSERT_GE(cases.size(), 40u);
  int failed = 0;
  for (size_t i = 0; i < cases.size(); ++i) {
    const auto ids = tok->encode(cases[i].text, false, false);
    if (ids != cases[i].ids) ++failed;
    EXPECT_EQ(ids, cases[i].ids) << path << " case " << i << " '" << cases[i].text << "'";
    EXPECT_EQ(tok->decode(ids), cases[i].text) << path << " case " << i;
  }
  EXPECT_EQ(failed, 0) << path;
}

TEST_F(ExportTest, SpmGgufRewrittenAsGgufKeepsKeysAndVectors) {
  const TokenizerExport t = load_export(tokenizer_fixture("ggml-vocab-llama-spm.gguf"));
  const std::string out = write_gguf(t, dir_ / "spm.gguf");
  auto f = GgufFile::open(out);
  ASSERT_TRUE(f.ok()) << f.message();
  EXPECT_EQ(f->get_string("tokenizer.ggml.model"), "llama");
  EXPECT_EQ(f->get_string("tokenizer.ggml.pre"), "default");
  ASSERT_NE(f->get_string_array("tokenizer.ggml.tokens"), nullptr);
  EXPECT_EQ(f->get_string_array("tokenizer.ggml.tokens")->size(), 32000u);
  EXPECT_EQ(f->get_float_array("tokenizer.ggml.scores")->size(), 32000u);
  EXPECT_EQ(f->find("tokenizer.ggml.token_type")->elem_type, GgufType::kI32);
  EXPECT_EQ(f->find("tokenizer.ggml.bos_token_id")->type, GgufType::kU32);
  EXPECT_EQ(f->get_int("tokenizer.ggml.bos_token_id"), 1);
  EXPECT_EQ(f->get_int("tokenizer.ggml.eos_token_id"), 2);
  EXPECT_EQ(f->get_int("tokenizer.ggml.unknown_token_id"), 0);
  EXPECT_EQ(f->get_bool("tokenizer.ggml.add_bos_token"), true);
  EXPECT_EQ(f->get_bool("tokenizer.ggml.add_eos_token"), false);
  EXPECT_EQ(f->find("tokenizer.ggml.merges"), nullptr);  // SPM merges by score
  // The same scores and types as the source file.
  auto src = GgufFile::open(tokenizer_fixture("ggml-vocab-llama-spm.gguf"));
  EXPECT_EQ(*f->get_float_array("tokenizer.ggml.scores"), *src->get_float_array("tokenizer.ggml.scores"));
  EXPECT_EQ(*f->get_int_array("tokenizer.ggml.token_type"), *src->get_int_array("tokenizer.ggml.token_type"));
  expect_vectors(out, "ggml-vocab-llama-spm.gguf");
}

TEST_F(ExportTest, Gpt2GgufRewrittenAsGgufKeepsMergesAndPre) {
  const TokenizerExport t = load_export(tokenizer_fixture("ggml-vocab-gpt-2.gguf"));
  const std::string out = write_gguf(t, dir_ / "gpt2.gguf");
  auto f = GgufFile::open(out);
  ASSERT_TRUE(f.ok()) << f.message();
  EXPECT_EQ(f->get_string("tokenizer.ggml.model"), "gpt2");
  EXPECT_EQ(f->get_string("tokenizer.ggml.pre"), "gpt-2");
  EXPECT_EQ(f->find("tokenizer.ggml.scores"), nullptr);  // convert_hf_to_gguf writes none for gpt2
  auto src = GgufFile::open(tokenizer_fixture("ggml-vocab-gpt-2.gguf"));
  EXPECT_EQ(*f->get_string_array("tokenizer.ggml.merges"), *src->get_string_array("tokenizer.ggml.merges"));
  EXPECT_EQ(*f->get_string_array("tokenizer.ggml.tokens"), *src->get_string_array("tokenizer.ggml.tokens"));
  EXPECT_EQ(f->get_int("tokenizer.ggml.eos_token_id"), 50256);
  expect_vectors(out, "ggml-vocab-gpt-2.gguf");
}

TEST_F(ExportTest, GgufToTokenizerJsonAndBackPassesTheVectors) {
  for (const char* vocab : {"ggml-vocab-llama-spm.gguf", "ggml-vocab-gpt-2.gguf"}) {
    SCOPED_TRACE(vocab);
    const fs::path hf = dir_ / (std::string(vocab) + ".hf");
    const TokenizerExport t = load_export(tokenizer_fixture(vocab));
    Status s = write_hf_tokenizer(t, hf.string());
    ASSERT_TRUE(s.ok()) << s.message();
    ASSERT_TRUE(fs::exists(hf / "tokenizer_config.json"));
    expect_vectors(hf.string(), vocab);  // the folder loads its tokenizer.json

    // tokenizer.json -> GGUF: the SentencePiece scores are remade from the
    // merge ranks, and the vectors still pass.
    const TokenizerExport back = load_export(hf.string());
    const std::string gguf = write_gguf(back, dir_ / (std::string(vocab) + ".back.gguf"));
    expect_vectors(gguf, vocab);
    auto f = GgufFile::open(gguf);
    auto src = GgufFile::open(tokenizer_fixture(vocab));
    EXPECT_EQ(f->get_string("tokenizer.ggml.model"), src->get_string("tokenizer.ggml.model"));
    EXPECT_EQ(*f->get_string_array("tokenizer.ggml.tokens"), *src->get_string_array("tokenizer.ggml.tokens"));
    EXPECT_EQ(*f->get_int_array("tokenizer.ggml.token_type"), *src->get_int_array("tokenizer.ggml.token_type"));
    EXPECT_EQ(f->get_int("tokenizer.ggml.bos_token_id"), src->get_int("tokenizer.ggml.bos_token_id"));
    EXPECT_EQ(f->get_int("tokenizer.ggml.eos_token_id"), src->get_int("tokenizer.ggml.eos_token_id"));
  }
}

TEST_F(ExportTest, TokenizerConfigCarriesSpecialsAndTemplate) {
  TokenizerExport t = load_export(tokenizer_fixture("ggml-vocab-llama-spm.gguf"));
  t.chat_template = "{% for m in messages %}[INST] {{ m['content'] }} [/INST]{% endfor %}";
  ASSERT_TRUE(write_hf_tokenizer(t, dir_.string()).ok());
  std::ifstream in(dir_ / "tokenizer_config.json");
  const auto cfg = nlohmann::json::parse(in);
  EXPECT_EQ(cfg["bos_token"], "<s>");
  EXPECT_EQ(cfg["eos_token"], "</s>");
  EXPECT_EQ(cfg["unk_token"], "<unk>");
  EXPECT_EQ(cfg["add_bos_token"], true);
  EXPECT_EQ(cfg["add_eos_token"], false);
  EXPECT_EQ(cfg["chat_template"], t.chat_template);
  // The folder's template goes into GGUF as tokenizer.chat_template.
  const TokenizerExport back = load_export(dir_.string());
  EXPECT_EQ(back.chat_template, t.chat_template);
  auto f = GgufFile::open(write_gguf(back, dir_ / "t.gguf"));
  EXPECT_EQ(f->get_string("tokenizer.chat_template"), t.chat_template);
  // add_bos from tokenizer_config.json / TemplateProcessing survives.
  auto tok = Tokenizer::load(dir_.string());
  ASSERT_TRUE(tok.ok());
  EXPECT_EQ(tok->encode("hi", true).front(), 1);
}

TEST_F(ExportTest, PadsToTheModelVocabAsLlamaCppDoes) {
  const TokenizerExport t = load_export(tokenizer_fixture("ggml-vocab-gpt-2.gguf"));
  auto f = GgufFile::open(write_gguf(t, dir_ / "pad.gguf", 50260));
  const auto* tokens = f->get_string_array("tokenizer.ggml.tokens");
  ASSERT_EQ(tokens->size(), 50260u);
  EXPECT_EQ((*tokens)[50259], "[PAD50259]");
  EXPECT_EQ((*f->get_int_array("tokenizer.ggml.token_type"))[50257], 5);  // UNUSED
}

TEST(ExportFamily, NamesThePreTokenizerFamily) {
  TokenizerModel m;
  m.kind = TokenizerKind::kBpe;
  m.byte_level = true;
  // Llama 3's tokenizer.json Split regex, in HF's (?i:...) spelling.
  m.pre_regexes = {"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| "
                   "?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"};
  EXPECT_EQ(pre_tokenizer_family(m), "llama-bpe");
  m.pre_regexes = {"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| "
                   "?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"};
  EXPECT_EQ(pre_tokenizer_family(m), "qwen2");
  // GPT-2's ByteLevel(use_regex) regex, with and without HF's "|\s+" tail.
  m.pre_regexes = {"'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+"};
  EXPECT_EQ(pre_tokenizer_family(m), "gpt-2");
  m.pre_regexes = {"\\p{N}+"};
  EXPECT_EQ(pre_tokenizer_family(m), "");
  GgufWriter w;
  TokenizerExport t;
  t.model = std::move(m);
  Status s = write_gguf_tokenizer(t, w);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("pre-tokenizer"), std::string::npos) << s.message();
}

TEST_F(ExportTest, NoTokenizerIsNotAnError) {
  auto t = load_tokenizer_for_export(dir_.string());  // an empty folder
  ASSERT_TRUE(t.ok()) << t.message();
  EXPECT_FALSE(t->has_value());
  GgufWriter w;
  w.set_string("general.architecture", "llama");
  ASSERT_TRUE(w.write((dir_ / "bare.gguf").string()).ok());
  t = load_tokenizer_for_export((dir_ / "bare.gguf").string());
  ASSERT_TRUE(t.ok()) << t.message();
  EXPECT_FALSE(t->has_value());
  std::ofstream(dir_ / "tokenizer.json") << "{ not json";
  EXPECT_FALSE(load_tokenizer_for_export(dir_.string()).ok());
}

// NFC (UAX #15): Hangul written as conjoining jamo composes to syllables.
TEST(UnicodeNfc, ComposesDecomposedHangul) {
  const std::string nfd = "\xE1\x84\x92\xE1\x85\xA1\xE1\x86\xAB\xE1\x84\x80\xE1\x85\xB3\xE1\x86\xAF";  // 한글 in jamo
  EXPECT_EQ(nfc_normalize(nfd), "\xED\x95\x9C\xEA\xB8\x80");                                          // 한글
  EXPECT_EQ(nfc_normalize("e\xCC\x81"), "\xC3\xA9");                                                   // e + U+0301 -> é
  EXPECT_EQ(nfc_normalize("\xED\x95\x9C\xEA\xB8\x80 hello"), "\xED\x95\x9C\xEA\xB8\x80 hello");       // already NFC
  EXPECT_EQ(nfc_normalize("plain ascii"), "plain ascii");
  EXPECT_TRUE(nfc_trivially_normalized("caf\xC3\xA9"));    // U+00E9 < U+0300
  EXPECT_FALSE(nfc_trivially_normalized("\xED\x95\x9C"));  // Hangul goes to ICU
  // U+212B ANGSTROM SIGN is a singleton: NFC makes it U+00C5.
  EXPECT_EQ(nfc_normalize("\xE2\x84\xAB"), "\xC3\x85");
  // Bad UTF-8 becomes U+FFFD instead of being dropped or read past.
  EXPECT_EQ(nfc_normalize(std::string("\xED\x95", 2) + "\xCC\x81"), "\xEF\xBF\xBD\xCC\x81");
}

// A tokenizer.json with the "NFC" normalizer (Qwen2) encodes NFD Hangul as
// the precomposed text, as HF tokenizers does; without it the jamo stay.
TEST_F(ExportTest, NfcNormalizerComposesNfdHangulBeforeEncoding) {
  TokenizerExport t = load_export(tokenizer_fixture("ggml-vocab-gpt-2.gguf"));
  t.model.nfc = true;
  ASSERT_TRUE(write_hf_tokenizer(t, (dir_ / "nfc").string()).ok());
  ASSERT_TRUE(write_hf_tokenizer(load_export(tokenizer_fixture("ggml-vocab-gpt-2.gguf")),
                                 (dir_ / "plain").string()).ok());
  auto nfc = Tokenizer::load((dir_ / "nfc").string()), plain = Tokenizer::load((dir_ / "plain").string());
  ASSERT_TRUE(nfc.ok() && plain.ok()) << nfc.message() << plain.message();
  const std::string composed = "\xED\x95\x9C\xEA\xB8\x80 text";                             // 한글 text
  const std::string decomposed = "\xE1\x84\x92\xE1\x85\xA1\xE1\x86\xAB\xE1\x84\x80\xE1\x85\xB3\xE1\x86\xAF text";
  EXPECT_EQ(nfc->encode(decomposed), plain->encode(composed));
  EXPECT_NE(plain->encode(decomposed), plain->encode(composed));
  EXPECT_EQ(nfc->decode(nfc->encode(decomposed)), composed);
}

}  // namespace
}  // namespace hanul

namespace hanul {
namespace {

TEST(ExportRefuses, WordPieceIsNotWrittenAsSomethingElse) {
  auto t = load_tokenizer_for_export(testing::tokenizer_fixture("ggml-vocab-bert-bge.gguf"));
  ASSERT_TRUE(t.ok()) << t.message();
  ASSERT_TRUE(t->has_value());
  const std::string dir = ::testing::TempDir() + "hanul_export_bert";
  Status s = write_hf_tokenizer(**t, dir);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("WordPiece"), std::string::npos) << s.message();
  GgufWriter w;
  EXPECT_FALSE(write_gguf_tokenizer(**t, w, 30522).ok());
}

}  // namespace
}  // namespace hanul
