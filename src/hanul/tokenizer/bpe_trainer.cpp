#include "hanul/tokenizer/bpe_trainer.h"

#include <algorithm>
#include <queue>

#include <fmt/core.h>
#include <nlohmann/json.hpp>

#include "hanul/base/utf8.h"
#include "hanul/tokenizer/byte_bpe.h"

namespace hanul {

const char* const kGpt2SplitRegex =
    "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";

namespace {

bool printable_byte(int b) {
  return (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
}

// Bytes in the order of GPT-2's bytes_to_unicode (encoder.py): the bytes
// that stand for themselves, then the others in increasing order.
std::vector<uint8_t> byte_order() {
  std::vector<uint8_t> order;
  for (int b = 0; b < 256; ++b) {
    if (printable_byte(b)) order.push_back(static_cast<uint8_t>(b));
  }
  for (int b = 0; b < 256; ++b) {
    if (!printable_byte(b)) order.push_back(static_cast<uint8_t>(b));
  }
  return order;
}

uint64_t pair_key(int32_t a, int32_t b) {
  return (static_cast<uint64_t>(static_cast<uint32_t>(a)) << 32) | static_cast<uint32_t>(b);
}


}  // namespace

Result<BpeTrainer> BpeTrainer::create(BpeTrainOptions options) {
  const int64_t base = 256 + static_cast<int64_t>(options.special_tokens.size());
  if (options.vocab_size < base) {
    return Error{fmt::format("bpe train: vocab size {} is smaller than the 256 bytes + {} special tokens",
                             options.vocab_size, options.special_tokens.size())};
  }
  for (const std::string& s : options.special_tokens) {
    if (s.empty()) return Error{"bpe train: a special token is empty"};
    if (!utf8_is_valid(s)) return Error{fmt::format("bpe train: special token '{}' is not valid UTF-8", s)};
    if (std::count(options.special_tokens.begin(), options.special_tokens.end(), s) > 1) {
      return Error{fmt::format("bpe train: special token '{}' is given twice", s)};
    }
  }
  BpeTrainer t;
  HANUL_ASSIGN_OR_RETURN(t.pre_, PreTokenizer::from_regexes({kGpt2SplitRegex}));
  t.options_ = std::move(options);
  return t;
}

void BpeTrainer::add_text(std::string_view text) {
  bytes_seen_ += text.size();
  std::string clean;
  if (!utf8_is_valid(text)) {
    clean = sanitize_utf8(text);
    text = clean;
  }
  std::vector<std::pair<size_t, size_t>> words;
  auto count_piece = [&](size_t off, size_t len) {
    if (len == 0) return;
    words.clear();
    pre_.split(text.substr(off, len), words);
    for (const auto& [wo, wl] : words) ++word_counts_[std::string(text.substr(off + wo, wl))];
  };
  // Cut at every special token (leftmost match; the longest token on ties,
  // as a regex alternation of the tokens sorted longest first matches).
  size_t start = 0, pos = 0;
  while (pos < text.size()) {
    size_t best = std::string_view::npos, best_len = 0;
    for (const std::string& s : options_.special_tokens) {
      const size_t m = text.find(s, pos);
      if (m == std::string_view::npos) continue;
      if (m < best || (m == best && s.size() > best_len)) {
        best = m;
        best_len = s.size();
      }
    }
    if (best == std::string_view::npos) break;
    count_piece(start, best - start);
    start = pos = best + best_len;
  }
  count_piece(start, text.size() - start);
}

Result<BpeTrainResult> BpeTrainer::train() const {
  BpeTrainResult r;
  for (const std::string& s : options_.special_tokens) r.tokens.push_back(s);
  r.n_special = static_cast<int>(r.tokens.size());
  std::vector<int32_t> byte_id(256);
  for (uint8_t b : byte_order()) {
    byte_id[b] = static_cast<int32_t>(r.tokens.size());
    r.tokens.emplace_back(1, static_cast<char>(b));
  }
  const size_t target = static_cast<size_t>(options_.vocab_size);

  // Words as symbol sequences, with their frequencies.
  std::vector<std::vector<int32_t>> words;
  std::vector<int64_t> freq;
  words.reserve(word_counts_.size());
  freq.reserve(word_counts_.size());
  for (const auto& [w, c] : word_counts_) {
    if (c < options_.min_word_frequency || w.size() < 2) continue;
    std::vector<int32_t> syms(w.size());
    for (size_t i = 0; i < w.size(); ++i) syms[i] = byte_id[static_cast<uint8_t>(w[i])];
    words.push_back(std::move(syms));
    freq.push_back(c);
  }

  std::unordered_map<uint64_t, int64_t> counts;
  std::unordered_map<uint64_t, std::vector<int32_t>> where;  // pair -> words (may repeat / be stale)
  counts.reserve(1 << 16);
  where.reserve(1 << 16);
  for (size_t w = 0; w < words.size(); ++w) {
    const auto& s = words[w];
    for (size_t i = 0; i + 1 < s.size(); ++i) {
      const uint64_t k = pair_key(s[i], s[i + 1]);
      counts[k] += freq[w];
      auto& list = where[k];
      if (list.empty() || list.back() != static_cast<int32_t>(w)) list.push_back(static_cast<int32_t>(w));
    }
  }

  struct Entry {
    int64_t count;
    int32_t a, b;
  };
  const std::vector<std::string>& tok = r.tokens;
  // Max-heap: higher count first; on equal counts the greater (bytes_a,
  // bytes_b), compared as unsigned bytes like Python's bytes.
  auto worse = [&tok](const Entry& x, const Entry& y) {
    if (x.count != y.count) return x.count < y.count;
    const int ca = tok[static_cast<size_t>(x.a)].compare(tok[static_cast<size_t>(y.a)]);
    if (ca != 0) return ca < 0;
    return tok[static_cast<size_t>(x.b)].compare(tok[static_cast<size_t>(y.b)]) < 0;
  };
  std::priority_queue<Entry, std::vector<Entry>, decltype(worse)> heap(worse);
  for (const auto& [k, c] : counts) {
    if (c > 0) heap.push({c, static_cast<int32_t>(k >> 32), static_cast<int32_t>(k & 0xFFFFFFFFu)});
  }

  std::vector<uint32_t> stamp(words.size(), 0);
  uint32_t round = 0;
  std::vector<uint64_t> touched;
  std::vector<int32_t> merged;
  while (r.tokens.size() < target && !heap.empty()) {
    const Entry e = heap.top();
    heap.pop();
    const uint64_t key = pair_key(e.a, e.b);
    auto cit = counts.find(key);
    if (cit == counts.end() || cit->second != e.count || e.count <= 0) continue;  // stale entry

    const auto id = static_cast<int32_t>(r.tokens.size());
    r.merges.emplace_back(tok[static_cast<size_t>(e.a)], tok[static_cast<size_t>(e.b)]);
    r.tokens.push_back(tok[static_cast<size_t>(e.a)] + tok[static_cast<size_t>(e.b)]);

    ++round;
    touched.clear();
    const std::vector<int32_t> occurrences = std::move(where[key]);
    where.erase(key);
    for (int32_t wi : occurrences) {
      const auto w = static_cast<size_t>(wi);
      if (stamp[w] == round) continue;
      stamp[w] = round;
      std::vector<int32_t>& s = words[w];
      bool has = false;
      for (size_t i = 0; i + 1 < s.size() && !has; ++i) has = s[i] == e.a && s[i + 1] == e.b;
      if (!has) continue;
      const int64_t f = freq[w];
      // Take the word's pairs out, merge left to right without overlap,
      // put the new pairs in: the counts stay what a full recount gives.
      for (size_t i = 0; i + 1 < s.size(); ++i) {
        const uint64_t k = pair_key(s[i], s[i + 1]);
        counts[k] -= f;
        touched.push_back(k);
      }
      merged.clear();
      for (size_t i = 0; i < s.size(); ++i) {
        if (i + 1 < s.size() && s[i] == e.a && s[i + 1] == e.b) {
          merged.push_back(id);
          ++i;
        } else {
          merged.push_back(s[i]);
        }
      }
      s.assign(merged.begin(), merged.end());
      for (size_t i = 0; i + 1 < s.size(); ++i) {
        const uint64_t k = pair_key(s[i], s[i + 1]);
        counts[k] += f;
        touched.push_back(k);
        if (s[i] == id || s[i + 1] == id) {
          auto& list = where[k];
          if (list.empty() || list.back() != wi) list.push_back(wi);
        }
      }
    }
    std::sort(touched.begin(), touched.end());
    touched.erase(std::unique(touched.begin(), touched.end()), touched.end());
    for (uint64_t k : touched) {
      auto it = counts.find(k);
      if (it == counts.end()) continue;
      if (it->second <= 0) {
        counts.erase(it);
        continue;
      }
      heap.push({it->second, static_cast<int32_t>(k >> 32), static_cast<int32_t>(k & 0xFFFFFFFFu)});
    }
  }
  return r;
}

namespace {

std::string spell(const std::string& bytes) { return byte_level_encode(bytes); }

}  // namespace

std::string bpe_tokenizer_json(const BpeTrainResult& result) {
  using nlohmann::ordered_json;
  ordered_json added = ordered_json::array();
  for (int i = 0; i < result.n_special; ++i) {
    added.push_back({{"id", i},
                     {"content", result.tokens[static_cast<size_t>(i)]},
                     {"single_word", false},
                     {"lstrip", false},
                     {"rstrip", false},
                     {"normalized", false},
                     {"special", true}});
  }
  ordered_json vocab = ordered_json::object();
  for (size_t i = 0; i < result.tokens.size(); ++i) {
    const std::string& t = result.tokens[i];
    vocab[static_cast<int>(i) < result.n_special ? t : spell(t)] = i;
  }
  ordered_json merges = ordered_json::array();
  for (const auto& [a, b] : result.merges) merges.push_back(spell(a) + " " + spell(b));
  // ByteLevel with use_regex: GPT-2's split regex (tokenizers
  // pre_tokenizers/byte_level.rs); no prefix space, so encoding is lossless.
  ordered_json byte_level = {{"type", "ByteLevel"},
                             {"add_prefix_space", false},
                             {"trim_offsets", true},
                             {"use_regex", true}};
  ordered_json post = byte_level;
  post["trim_offsets"] = false;
  ordered_json root = {
      {"version", "1.0"},
      {"truncation", nullptr},
      {"padding", nullptr},
      {"added_tokens", added},
      {"normalizer", nullptr},
      {"pre_tokenizer", byte_level},
      {"post_processor", post},
      {"decoder", byte_level},
      {"model",
       {{"type", "BPE"},
        {"dropout", nullptr},
        {"unk_token", nullptr},
        {"continuing_subword_prefix", nullptr},
        {"end_of_word_suffix", nullptr},
        {"fuse_unk", false},
        {"byte_fallback", false},
        {"ignore_merges", false},
        {"vocab", vocab},
        {"merges", merges}}},
  };
  return root.dump(2) + "\n";
}

std::string bpe_merges_txt(const BpeTrainResult& result) {
  std::string out;
  for (const auto& [a, b] : result.merges) {
    out += spell(a);
    out += ' ';
    out += spell(b);
    out += '\n';
  }
  return out;
}

std::string bpe_vocab_json(const BpeTrainResult& result) {
  nlohmann::ordered_json vocab = nlohmann::ordered_json::object();
  for (size_t i = 0; i < result.tokens.size(); ++i) {
    const std::string& t = result.tokens[i];
    vocab[static_cast<int>(i) < result.n_special ? t : spell(t)] = i;
  }
  return vocab.dump(4) + "\n";
}

}  // namespace hanul
