// The token table every tokenizer shares: id -> text, score and type, text ->
// id, the special ids, and the split of raw text around special and added
// tokens that happens before any model runs (llama.cpp's
// tokenizer_st_partition; HF tokenizers' AddedVocabulary).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace hanul {

// Token types as GGUF stores them (tokenizer.ggml.token_type, llama.h's
// llama_token_type) and as SentencePiece's ModelProto numbers them.
enum class TokenType : uint8_t {
  kUndefined = 0,
  kNormal = 1,
  kUnknown = 2,
  kControl = 3,
  kUserDefined = 4,
  kUnused = 5,
  kByte = 6,
};

struct TokenData {
  std::string text;  // as stored: "▁the" (SentencePiece), "Ġthe" (byte-level)
  float score = 0.0f;
  TokenType type = TokenType::kNormal;
  bool lstrip = false;  // an added token eats the whitespace to its left
  bool rstrip = false;  // ... and to its right
};

struct StringHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};

// One piece of the input after special tokens are split out: either raw text
// (a byte range of the input) or a token id.
struct Fragment {
  int32_t token = -1;  // -1: raw text
  size_t offset = 0;
  size_t length = 0;
};

class Vocab {
 public:
  std::vector<TokenData> tokens;
  int32_t bos = -1, eos = -1, unk = -1, pad = -1, eot = -1;
  std::vector<int32_t> eog;  // end-of-generation ids (eos, eot, <|im_end|>, ...)

  int32_t n_tokens() const { return static_cast<int32_t>(tokens.size()); }
  // -1 when text is not a token.
  int32_t find(std::string_view text) const {
    auto it = text_to_id_.find(text);
    return it == text_to_id_.end() ? -1 : it->second;
  }
  const TokenData& at(int32_t id) const { return tokens[static_cast<size_t>(id)]; }
  bool valid(int32_t id) const { return id >= 0 && id < n_tokens(); }
  bool is_control(int32_t id) const { return valid(id) && at(id).type == TokenType::kControl; }

  // Builds the text -> id map and the list of tokens matched before the
  // model runs. Call once after tokens and the special ids are filled in.
  // Empty token texts become "[EMPTY_<id>]" so that every text is unique
  // enough to look up (llama.cpp does the same).
  void finalize();

  // Splits text around special tokens, longest token first. Control and
  // unknown tokens are matched only when parse_special; user-defined
  // (non-special added) tokens always are, as HF tokenizers does.
  std::vector<Fragment> partition(std::string_view text, bool parse_special) const;

 private:
  std::unordered_map<std::string, int32_t, StringHash, std::equal_to<>> text_to_id_;
  std::vector<int32_t> special_by_length_;  // control, user-defined, unknown
};

}  // namespace hanul
