#include "hanul/tokenizer/byte_bpe.h"

#include <array>
#include <cstring>
#include <mutex>
#include <queue>

#include <fmt/core.h>

#include "hanul/base/utf8.h"

namespace hanul {
namespace {

struct ByteMap {
  std::array<std::string, 256> to_char;
  std::unordered_map<uint32_t, uint8_t> from_cp;
  ByteMap() {
    // GPT-2 encoder.py bytes_to_unicode().
    uint32_t extra = 256;
    for (int b = 0; b < 256; ++b) {
      const bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
      const uint32_t cp = printable ? static_cast<uint32_t>(b) : extra++;
      to_char[static_cast<size_t>(b)] = utf8_encode(cp);
      from_cp[cp] = static_cast<uint8_t>(b);
    }
  }
};

const ByteMap& byte_map() {
  static const ByteMap kMap;
  return kMap;
}

}  // namespace

const std::string& byte_level_char(uint8_t b) { return byte_map().to_char[b]; }

std::string byte_level_encode(std::string_view bytes) {
  const ByteMap& m = byte_map();
  std::string out;
  out.reserve(bytes.size() * 2);
  for (char c : bytes) out += m.to_char[static_cast<uint8_t>(c)];
  return out;
}

bool byte_level_decode(std::string_view text, std::string* bytes) {
  const ByteMap& m = byte_map();
  bool clean = true;
  size_t pos = 0;
  while (pos < text.size()) {
    uint32_t cp;
    size_t len;
    if (utf8_decode(text, pos, &cp, &len)) {
      auto it = m.from_cp.find(cp);
      if (it != m.from_cp.end()) {
        *bytes += static_cast<char>(it->second);
        pos += len;
        continue;
      }
    }
    clean = false;
    bytes->append(text.substr(pos, len));
    pos += len;
  }
  return clean;
}

// Word -> merged symbols. Bounded: past kMaxEntries words it stops growing
// (the frequent words of a text come early). A mutex, not a per-thread map:
// uncontended it costs ~20 ns against ~1 us for merging a word.
struct BpeMerges::Cache {
  static constexpr size_t kMaxEntries = 1 << 18;
  static constexpr size_t kMaxSymbols = 64;  // longer words are rare; not cached
  std::mutex mu;
  std::unordered_map<std::string, std::vector<int32_t>> map;
};

Result<BpeMerges> BpeMerges::build(const Vocab& vocab,
                                   const std::vector<std::pair<std::string, std::string>>& merges) {
  BpeMerges m;
  m.cache_ = std::make_shared<Cache>();
  m.vocab_ = &vocab;
  m.n_vocab_ = vocab.n_tokens();
  m.ranks_.reserve(merges.size() * 2);
  auto intern = [&](const std::string& text) -> int32_t {
    const int32_t id = vocab.find(text);
    if (id >= 0) return id;
    auto it = m.extra_ids_.find(text);
    if (it != m.extra_ids_.end()) return it->second;
    const int32_t extra = m.n_vocab_ + static_cast<int32_t>(m.extra_texts_.size());
    m.extra_texts_.push_back(text);
    m.extra_ids_.emplace(text, extra);
    return extra;
  };
  for (size_t i = 0; i < merges.size(); ++i) {
    const auto& [l, r] = merges[i];
    if (l.empty() || r.empty()) {
      return Error{fmt::format("bpe: merge {} ('{}' '{}') has an empty side", i, l, r)};
    }
    const int32_t a = intern(l), b = intern(r), res = intern(l + r);
    // A pair listed twice keeps its first (best) rank, as a rank map built
    // from the list in order does.
    m.ranks_.emplace(key(a, b), Merge{static_cast<int32_t>(i), res});
  }
  return m;
}

int32_t BpeMerges::symbol_id(std::string_view text) const {
  const int32_t id = vocab_->find(text);
  if (id >= 0) return id;
  auto it = extra_ids_.find(text);
  return it == extra_ids_.end() ? -1 : it->second;
}

const std::string& BpeMerges::extra_text(int32_t id) const {
  return extra_texts_[static_cast<size_t>(id - n_vocab_)];
}

void BpeMerges::merge(std::vector<int32_t>& symbols) const {
  if (symbols.size() < 2) return;
  if (!cache_ || symbols.size() > Cache::kMaxSymbols) {
    merge_uncached(symbols);
    return;
  }
  std::string key(symbols.size() * sizeof(int32_t), '\0');
  std::memcpy(key.data(), symbols.data(), key.size());
  {
    std::lock_guard<std::mutex> lock(cache_->mu);
    auto it = cache_->map.find(key);
    if (it != cache_->map.end()) {
      symbols = it->second;
      return;
    }
  }
  merge_uncached(symbols);
  std::lock_guard<std::mutex> lock(cache_->mu);
  if (cache_->map.size() < Cache::kMaxEntries) cache_->map.emplace(std::move(key), symbols);
}

void BpeMerges::merge_uncached(std::vector<int32_t>& symbols) const {
  const int n = static_cast<int>(symbols.size());
  if (n < 2) return;
  std::vector<int> prev(static_cast<size_t>(n)), next(static_cast<size_t>(n));
  for (int i = 0; i < n; ++i) {
    prev[static_cast<size_t>(i)] = i - 1;
    next[static_cast<size_t>(i)] = i + 1 < n ? i + 1 : -1;
  }
  struct Cand {
    int32_t rank;
    int left, right;
    int32_t left_id, right_id, result;
    // Lowest rank first; on equal ranks the leftmost pair.
    bool operator<(const Cand& o) const { return rank > o.rank || (rank == o.rank && left > o.left); }
  };
  std::priority_queue<Cand> queue;
  auto consider = [&](int l, int r) {
    if (l < 0 || r < 0) return;
    const int32_t a = symbols[static_cast<size_t>(l)], b = symbols[static_cast<size_t>(r)];
    if (a < 0 || b < 0) return;
    auto it = ranks_.find(key(a, b));
    if (it == ranks_.end()) return;
    queue.push({it->second.rank, l, r, a, b, it->second.result});
  };
  for (int i = 0; i + 1 < n; ++i) consider(i, i + 1);
  std::vector<bool> dead(static_cast<size_t>(n), false);
  while (!queue.empty()) {
    const Cand c = queue.top();
    queue.pop();
    const auto l = static_cast<size_t>(c.left), r = static_cast<size_t>(c.right);
    // Stale if either side was merged into something else since.
    if (dead[l] || dead[r] || next[l] != c.right || symbols[l] != c.left_id ||
        symbols[r] != c.right_id) {
      continue;
    }
    symbols[l] = c.result;
    dead[r] = true;
    next[l] = next[r];
    if (next[r] >= 0) prev[static_cast<size_t>(next[r])] = c.left;
    consider(prev[l], c.left);
    consider(c.left, next[l]);
  }
  size_t w = 0;
  for (size_t i = 0; i < symbols.size(); ++i) {
    if (!dead[i]) symbols[w++] = symbols[i];
  }
  symbols.resize(w);
}

}  // namespace hanul
