// The tokenizer front door: load any of the tokenizer files people ship with
// Llama-family models, encode text to ids and decode ids back, the way the
// model's own tokenizer does (llama.cpp's test vectors, HF tokenizers).
//
//   auto tok = Tokenizer::load("model.gguf");   // or tokenizer.json, a folder, ...
//   std::vector<int32_t> ids = tok->encode("안녕하세요", /*add_special=*/true,
//                                          /*parse_special=*/false);
//   std::string text = tok->decode(ids);
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "hanul/base/result.h"

namespace hanul {

struct TokenizerModel;
class Vocab;

class Tokenizer {
 public:
  // path: a GGUF file (tokenizer.ggml.*), a HF tokenizer.json, a tiktoken
  // ranks file (Llama 3 tokenizer.model), a SentencePiece tokenizer.model, or
  // a folder holding one of them (tokenizer.json is preferred).
  static Result<Tokenizer> load(const std::string& path);
  static Result<Tokenizer> from_model(TokenizerModel model);

  // add_special: BOS/EOS as the tokenizer's config asks. parse_special: turn
  // the text of control tokens ("<|eot_id|>") into their ids; added
  // non-special tokens are always matched.
  std::vector<int32_t> encode(std::string_view text, bool add_special = false,
                              bool parse_special = false) const;
  // The text of ids. Control tokens are dropped unless special; the
  // SentencePiece dummy-prefix space of the first token is removed.
  std::string decode(std::span<const int32_t> ids, bool special = false) const;
  // The bytes one token stands for (may be part of a UTF-8 sequence); the
  // text of control tokens only when special. Empty for an id out of range.
  std::string token_to_piece(int32_t id, bool special = true) const;
  // The token's text as stored in the vocab ("▁the", "Ġthe", "<0x0A>").
  const std::string& token_text(int32_t id) const;
  int32_t token_id(std::string_view text) const;  // -1 if none

  int32_t n_vocab() const;
  int32_t bos() const;
  int32_t eos() const;
  int32_t eot() const;
  int32_t unk() const;
  bool add_bos() const;
  bool add_eos() const;
  bool is_eog(int32_t id) const;
  bool is_control(int32_t id) const;
  // "llama" (SentencePiece BPE), "gpt2" (byte-level BPE), "hf-bpe", "tiktoken".
  const std::string& kind_name() const;
  const Vocab& vocab() const;

 private:
  friend class TokenStreamDecoder;
  std::shared_ptr<const TokenizerModel> m_;
};

// Decodes a stream of ids as they are generated and never emits a broken
// UTF-8 sequence: bytes of a character split across byte tokens (a Hangul
// syllable is 3 bytes, often 3 <0xXX> tokens) are held until it completes.
// Bytes that can never form a character come out as U+FFFD.
class TokenStreamDecoder {
 public:
  // at_start: the first id begins the text, so SentencePiece's dummy-prefix
  // space is dropped from it (as decode() does); false when continuing a
  // prompt, where that space separates words ("time" + " ships").
  explicit TokenStreamDecoder(const Tokenizer& tok, bool special = false, bool at_start = true)
      : tok_(tok), special_(special), first_(at_start) {}
  // Text that became complete with this id (possibly empty).
  std::string push(int32_t id);
  // Whatever is still held, with U+FFFD for an unfinished sequence.
  std::string flush();

 private:
  Tokenizer tok_;
  bool special_;
  bool first_;
  std::string pending_;
};

}  // namespace hanul
