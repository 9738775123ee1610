// WordPiece, the BERT tokenizer (llama.cpp "bert" / WPM; HF BertNormalizer +
// BertPreTokenizer + WordPiece model): the text is cleaned, lowercased and
// stripped of accents, cut at whitespace, punctuation and CJK ideographs, and
// each word is spelled greedily with the longest vocab piece first; a word
// that cannot be spelled is one [UNK].
//
// Two vocab spellings exist and both work here:
//   GGUF (llama.cpp convert_hf_to_gguf): a word starts with "▁the", a piece
//     inside a word is bare ("ing");     word_prefix "▁", continuation "".
//   HF vocab.txt / tokenizer.json: "the" and "##ing";
//                                         word_prefix "",  continuation "##".
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "hanul/tokenizer/vocab.h"

namespace hanul {

struct WordPieceOptions {
  std::string word_prefix = "\xE2\x96\x81";  // ▁ U+2581 (GGUF spelling)
  std::string continuation;                  // "##" for HF vocabs
  bool lowercase = true;                     // and strip accents (HF ties them by default)
  // HF WordPiece max_input_chars_per_word: a longer word is [UNK] whole.
  size_t max_chars_per_word = 100;
};

// BERT's basic tokenizer: the words of text, already normalized. Rules as
// HF's BasicTokenizer and llama.cpp's llm_tokenizer_wpm_session::preprocess:
//   - U+0000, U+FFFD and other (category C) code points are dropped;
//   - White_Space code points end a word;
//   - with lowercase: full lowercase, then NFD and every nonspacing mark
//     (category Mn) dropped, so "Führer" -> "fuhrer";
//   - punctuation (category P), ASCII symbols ($ + < = > ^ ` | ~) and CJK
//     ideographs are words of their own.
// Invalid UTF-8 bytes count as U+FFFD (dropped).
std::vector<std::string> wordpiece_words(std::string_view text, bool lowercase);

class WordPiece {
 public:
  static WordPiece build(const Vocab& vocab, WordPieceOptions opts);

  // Appends the ids of text (no [CLS]/[SEP]).
  void encode(const Vocab& vocab, std::string_view text, std::vector<int32_t>& out) const;
  // Spells one normalized word; false (and nothing appended) when some part
  // of it is no piece of the vocab.
  bool encode_word(const Vocab& vocab, std::string_view word, std::vector<int32_t>& out) const;

  // Text a token stands for in decoded output: word-start pieces get a
  // leading space, continuation pieces are glued on ("▁hug" "ging" ->
  // " hugging"; "hug" "##ging" -> " hugging").
  std::string piece(const Vocab& vocab, int32_t id) const;

  const WordPieceOptions& options() const { return opts_; }

 private:
  WordPieceOptions opts_;
  size_t max_token_bytes_ = 0;
};

}  // namespace hanul
