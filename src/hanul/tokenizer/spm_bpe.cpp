#include "hanul/tokenizer/spm_bpe.h"

#include <queue>
#include <string>
#include <unordered_map>
#include <utility>

#include "hanul/base/utf8.h"

namespace hanul {
namespace {

struct Symbol {
  int prev, next;
  size_t offset, n;  // byte range of the text; n == 0 once merged away
};

struct Bigram {
  int left, right;
  float score;
  size_t size;
  // Highest score first; on equal scores the leftmost pair.
  bool operator<(const Bigram& o) const {
    return score < o.score || (score == o.score && left > o.left);
  }
};

// SentencePiece only merges into ordinary pieces: control, byte and unknown
// pieces live in its reserved map and are never formed from text
// (model_interface.cc, bpe_model.cc). llama.cpp looks up every token here;
// we follow SentencePiece, whose output the test vectors record.
bool mergeable(const TokenData& t) {
  return t.type == TokenType::kNormal || t.type == TokenType::kUserDefined ||
         t.type == TokenType::kUndefined;
}

class Session {
 public:
  Session(const Vocab& vocab, std::string_view text) : vocab_(vocab), text_(text) {}

  void encode(std::vector<int32_t>& out) {
    size_t offs = 0;
    int index = 0;
    while (offs < text_.size()) {
      const size_t n = std::min(utf8_len(static_cast<uint8_t>(text_[offs])), text_.size() - offs);
      symbols_.push_back({index - 1, offs + n == text_.size() ? -1 : index + 1, offs, n});
      offs += n;
      ++index;
    }
    for (int i = 1; i < static_cast<int>(symbols_.size()); ++i) try_add_bigram(i - 1, i);

    while (!queue_.empty()) {
      const Bigram b = queue_.top();
      queue_.pop();
      Symbol& l = symbols_[static_cast<size_t>(b.left)];
      Symbol& r = symbols_[static_cast<size_t>(b.right)];
      if (l.n == 0 || r.n == 0 || l.n + r.n != b.size) continue;  // stale
      l.n += r.n;
      r.n = 0;
      l.next = r.next;
      if (r.next >= 0) symbols_[static_cast<size_t>(r.next)].prev = b.left;
      try_add_bigram(l.prev, b.left);
      try_add_bigram(b.left, l.next);
    }
    if (symbols_.empty()) return;
    for (int i = 0; i != -1; i = symbols_[static_cast<size_t>(i)].next) {
      resegment(piece(symbols_[static_cast<size_t>(i)]), out);
    }
  }

 private:
  std::string_view piece(const Symbol& s) const { return text_.substr(s.offset, s.n); }

  int32_t lookup(std::string_view s) const {
    const int32_t id = vocab_.find(s);
    return id >= 0 && mergeable(vocab_.at(id)) ? id : -1;
  }

  void try_add_bigram(int left, int right) {
    if (left < 0 || right < 0) return;
    const Symbol& l = symbols_[static_cast<size_t>(left)];
    const Symbol& r = symbols_[static_cast<size_t>(right)];
    const std::string_view merged = text_.substr(l.offset, l.n + r.n);
    const int32_t id = lookup(merged);
    if (id < 0) return;
    queue_.push({left, right, vocab_.at(id).score, merged.size()});
    // Keep the two pieces as text, as sentencepiece does: the symbols behind
    // them may grow later (llama.cpp keeps indices and can split wrongly).
    rev_merge_[std::string(merged)] = {piece(l), piece(r)};
  }

  // A symbol that is not itself a token is split back along the merges that
  // made it; what is left over becomes byte tokens.
  void resegment(std::string_view text, std::vector<int32_t>& out) {
    const int32_t id = lookup(text);
    if (id >= 0) {
      out.push_back(id);
      return;
    }
    const auto it = rev_merge_.find(std::string(text));
    if (it == rev_merge_.end()) {
      for (char c : text) {
        const int32_t b = spm_byte_token(vocab_, static_cast<uint8_t>(c));
        out.push_back(b >= 0 ? b : vocab_.unk);
      }
      return;
    }
    const auto [left, right] = it->second;
    resegment(left, out);
    resegment(right, out);
  }

  const Vocab& vocab_;
  std::string_view text_;
  std::vector<Symbol> symbols_;
  std::priority_queue<Bigram> queue_;
  std::unordered_map<std::string, std::pair<std::string_view, std::string_view>> rev_merge_;
};

}  // namespace

int32_t spm_byte_token(const Vocab& vocab, uint8_t byte) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  const char buf[6] = {'<', '0', 'x', kHex[byte >> 4], kHex[byte & 15], '>'};
  const int32_t id = vocab.find(std::string_view(buf, 6));
  if (id >= 0) return id;
  // Vocabularies without byte tokens may still hold the single byte itself.
  const char one = static_cast<char>(byte);
  return vocab.find(std::string_view(&one, 1));
}

void spm_bpe_encode(const Vocab& vocab, std::string_view text, std::vector<int32_t>& out) {
  Session(vocab, text).encode(out);
}

}  // namespace hanul
