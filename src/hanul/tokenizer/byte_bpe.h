// BPE by merge rank (GPT-2, Llama 3, Qwen2, and HF tokenizers' BPE model):
// split a word into characters, then repeatedly merge the adjacent pair with
// the lowest merge rank (leftmost first on ties) until no pair is listed.
//
// Byte-level vocabularies spell every byte as one printable character
// (GPT-2's bytes_to_unicode: '!'..'~', '¡'..'¬', '®'..'ÿ' stand for
// themselves, the other 68 bytes become U+0100 onwards), so tokens are
// valid text; byte_level_encode/decode convert between raw bytes and that
// spelling.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "hanul/base/result.h"
#include "hanul/tokenizer/vocab.h"

namespace hanul {

// The character GPT-2 spells byte b with (UTF-8 encoded).
const std::string& byte_level_char(uint8_t b);
// Raw bytes -> byte-level spelling.
std::string byte_level_encode(std::string_view bytes);
// Byte-level spelling -> raw bytes. Characters outside the map are kept as
// they are (their UTF-8); returns false if there were any.
bool byte_level_decode(std::string_view text, std::string* bytes);

class BpeMerges {
 public:
  // merges[i] = (left, right) token texts of the rank-i merge. A text that
  // is not a token still gets a symbol id (past the end of the vocab), so
  // that a merge list which names it works as it would by text.
  static Result<BpeMerges> build(const Vocab& vocab,
                                 const std::vector<std::pair<std::string, std::string>>& merges);

  // Merges the symbols (ids from symbol_id()) of one word in place. Results
  // are cached per word (thread-safe), since text repeats its words.
  void merge(std::vector<int32_t>& symbols) const;

  // The symbol id of a text: a token id, an extra id, or -1.
  int32_t symbol_id(std::string_view text) const;
  // The text of an extra (non-token) symbol id.
  const std::string& extra_text(int32_t id) const;
  int32_t n_vocab() const { return n_vocab_; }
  size_t size() const { return ranks_.size(); }

 private:
  static uint64_t key(int32_t a, int32_t b) {
    return (static_cast<uint64_t>(static_cast<uint32_t>(a)) << 32) | static_cast<uint32_t>(b);
  }
  struct Merge {
    int32_t rank;
    int32_t result;
  };
  const Vocab* vocab_ = nullptr;
  int32_t n_vocab_ = 0;
  std::unordered_map<uint64_t, Merge> ranks_;
  std::unordered_map<std::string, int32_t, StringHash, std::equal_to<>> extra_ids_;
  std::vector<std::string> extra_texts_;
  struct Cache;
  std::shared_ptr<Cache> cache_;  // shared by copies: a cache entry never goes stale

  void merge_uncached(std::vector<int32_t>& symbols) const;
};

}  // namespace hanul
