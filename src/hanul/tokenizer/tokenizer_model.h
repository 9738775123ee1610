// What a loaded tokenizer is made of. The loaders (GGUF, tokenizer.json,
// tiktoken, SentencePiece .model) fill one of these; Tokenizer runs it.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "hanul/base/result.h"
#include "hanul/tokenizer/byte_bpe.h"
#include "hanul/tokenizer/pretokenizer.h"
#include "hanul/tokenizer/vocab.h"
#include "hanul/tokenizer/wordpiece.h"

namespace hanul {

enum class TokenizerKind {
  kSpm,      // SentencePiece BPE by piece score (llama.cpp "llama")
  kBpe,      // BPE by merge rank (llama.cpp "gpt2", HF BPE, tiktoken)
  kWordPiece,  // BERT WordPiece, longest piece first (llama.cpp "bert")
};

// Where the ▁ dummy prefix goes (HF Metaspace prepend_scheme).
enum class PrependScheme { kNever, kFirst, kAlways };

struct TokenizerModel {
  TokenizerKind kind = TokenizerKind::kSpm;
  Vocab vocab;
  std::string source;  // the file it came from, for messages
  std::string name;    // "llama", "gpt2", "hf-bpe", "tiktoken", "bert"

  bool add_bos = false;
  bool add_eos = false;
  bool nfc = false;  // HF normalizer "NFC" (Qwen2): text is NFC-normalized before splitting

  // SentencePiece-style text handling (kSpm, and kBpe when !byte_level).
  bool escape_spaces = true;  // ' ' -> '▁'
  PrependScheme prepend = PrependScheme::kAlways;
  bool metaspace_split = false;  // cut words before each ▁ (HF Metaspace split=true)
  bool byte_fallback = true;

  // Byte-level BPE.
  bool byte_level = false;
  bool ignore_merges = false;      // a word that is a token is not merged (Llama 3)
  bool add_prefix_space = false;   // HF ByteLevel add_prefix_space
  std::string pre_name;            // tokenizer.ggml.pre
  std::vector<std::string> pre_regexes;
  std::vector<std::pair<std::string, std::string>> merge_list;

  // WordPiece (kWordPiece): how the vocab spells word starts and continuations.
  WordPieceOptions wordpiece_opts;

  // Built by Tokenizer from the above.
  std::optional<WordPiece> wordpiece;
  PreTokenizer pre;
  std::optional<BpeMerges> merges;
  std::vector<int32_t> byte_symbol;  // byte-level: symbol id of each byte's char
  std::vector<std::string> pieces;   // id -> decoded bytes
};

Result<TokenizerModel> load_gguf_tokenizer(const std::string& path);
Result<TokenizerModel> load_hf_tokenizer_json(const std::string& path);
Result<TokenizerModel> load_tiktoken(const std::string& path);
Result<TokenizerModel> load_sentencepiece_model(const std::string& path);
// Any of the above, chosen by the file's first bytes.
Result<TokenizerModel> load_tokenizer_file(const std::string& path);

}  // namespace hanul
