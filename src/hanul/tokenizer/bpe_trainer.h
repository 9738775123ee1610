// Byte-level BPE training (GPT-2 style), the algorithm of Sennrich et al. as
// HF tokenizers' BpeTrainer and the Stanford CS336 reference run it:
//   1. cut the corpus at the special tokens (they are never merged across),
//   2. cut each piece into words with the GPT-2 pre-tokenizer regex,
//   3. start from the 256 bytes, and repeatedly merge the most frequent
//      adjacent pair of symbols over all words (counted with the word's
//      frequency); ties go to the lexicographically greatest pair of byte
//      strings (CS336: max over (count, (bytes_a, bytes_b))).
// Ids: the special tokens first, then the 256 bytes in the order of GPT-2's
// bytes_to_unicode table ('!'..'~', '¡'..'¬', '®'..'ÿ', then the rest), then
// one id per merge, as in CS336's train-bpe-reference-vocab.json.
//
// Pair counts are kept up to date incrementally: a merge only revisits the
// words that contain its pair (an index pair -> words), and a lazy max-heap
// holds (count, pair) entries that are checked against the live count when
// popped. Training a 32k vocab on ~10 MB takes seconds, not hours.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "hanul/base/result.h"
#include "hanul/tokenizer/pretokenizer.h"

namespace hanul {

struct BpeTrainOptions {
  int vocab_size = 32000;                   // specials + 256 bytes + merges
  std::vector<std::string> special_tokens;  // e.g. "<|endoftext|>"
  // Words that occur fewer times are dropped before merging (1: keep all).
  int64_t min_word_frequency = 1;
};

struct BpeTrainResult {
  std::vector<std::string> tokens;  // id -> raw bytes (specials as written)
  int n_special = 0;
  // merges[i] = raw bytes of the left and right symbol of the rank-i merge.
  std::vector<std::pair<std::string, std::string>> merges;
};

class BpeTrainer {
 public:
  static Result<BpeTrainer> create(BpeTrainOptions options);

  // Adds text to the word counts (may be called for each file or line
  // batch). Text must be valid UTF-8; invalid bytes are replaced by U+FFFD
  // first, as the tokenizer does when encoding.
  void add_text(std::string_view text);
  // Total bytes and distinct words seen so far.
  size_t bytes_seen() const { return bytes_seen_; }
  size_t distinct_words() const { return word_counts_.size(); }

  Result<BpeTrainResult> train() const;

 private:
  BpeTrainOptions options_;
  PreTokenizer pre_;
  std::unordered_map<std::string, int64_t> word_counts_;
  size_t bytes_seen_ = 0;
};

// The GPT-2 pre-tokenizer regex HF's ByteLevel pre-tokenizer uses.
extern const char* const kGpt2SplitRegex;

// A HF tokenizers tokenizer.json (model BPE, ByteLevel pre-tokenizer,
// decoder and post-processor, the specials as added special tokens).
std::string bpe_tokenizer_json(const BpeTrainResult& result);
// merges.txt (GPT-2 format: "#version" line, then "left right" per line in
// the byte-level spelling) and vocab.json (token -> id).
std::string bpe_merges_txt(const BpeTrainResult& result);
std::string bpe_vocab_json(const BpeTrainResult& result);

}  // namespace hanul
