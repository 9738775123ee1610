// Tokenizer from a tiktoken ranks file (Meta's Llama 3 tokenizer.model):
// one "<base64 token bytes> <rank>" per line, rank = id. tiktoken merges the
// pair whose joined bytes have the lowest rank; we turn that into an explicit
// merge list the way HF's TikTokenConverter (convert_slow_tokenizer.py) does,
// so the result equals the tokenizer.json and GGUF made from this file.
#include <algorithm>
#include <array>
#include <fstream>
#include <sstream>

#include <fmt/core.h>

#include "hanul/tokenizer/tokenizer_model.h"

namespace hanul {
namespace {

bool base64_decode(std::string_view in, std::string* out) {
  static const std::array<int8_t, 256> kTable = [] {
    std::array<int8_t, 256> t{};
    t.fill(-1);
    const char* a = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    for (int i = 0; i < 64; ++i) t[static_cast<uint8_t>(a[i])] = static_cast<int8_t>(i);
    return t;
  }();
  uint32_t acc = 0;
  int bits = 0;
  for (char c : in) {
    if (c == '=') break;
    const int8_t v = kTable[static_cast<uint8_t>(c)];
    if (v < 0) return false;
    acc = (acc << 6) | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      *out += static_cast<char>((acc >> bits) & 0xFF);
    }
  }
  return true;
}

// The special tokens Meta's Llama 3 tokenizer.py appends after the ranks.
std::vector<std::string> llama3_special_tokens(size_t n) {
  std::vector<std::string> s = {"<|begin_of_text|>", "<|end_of_text|>",
                                "<|reserved_special_token_0|>", "<|reserved_special_token_1|>",
                                "<|reserved_special_token_2|>", "<|reserved_special_token_3|>",
                                "<|start_header_id|>", "<|end_header_id|>",
                                "<|reserved_special_token_4|>", "<|eot_id|>"};
  for (size_t i = 5; s.size() < n; ++i) s.push_back(fmt::format("<|reserved_special_token_{}|>", i));
  return s;
}

}  // namespace

Result<TokenizerModel> load_tiktoken(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Error{fmt::format("tokenizer: cannot open '{}'", path)};
  std::vector<std::string> by_rank;  // raw bytes
  std::string line;
  size_t line_no = 0;
  while (std::getline(in, line)) {
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty()) continue;
    const size_t sp = line.find(' ');
    std::string bytes;
    if (sp == std::string::npos || !base64_decode(std::string_view(line).substr(0, sp), &bytes)) {
      return Error{fmt::format("tokenizer: '{}' line {} is not '<base64> <rank>' (not a tiktoken file?)",
                               path, line_no)};
    }
    char* end = nullptr;
    const long rank = std::strtol(line.c_str() + sp + 1, &end, 10);
    if (rank < 0 || rank > (1 << 24) || end == line.c_str() + sp + 1) {
      return Error{fmt::format("tokenizer: '{}' line {} has a bad rank", path, line_no)};
    }
    if (static_cast<size_t>(rank) >= by_rank.size()) by_rank.resize(static_cast<size_t>(rank) + 1);
    by_rank[static_cast<size_t>(rank)] = std::move(bytes);
  }
  if (by_rank.size() < 256) {
    return Error{fmt::format("tokenizer: '{}' holds {} ranks; a tiktoken file has at least 256",
                             path, by_rank.size())};
  }
  TokenizerModel m;
  m.source = path;
  m.name = "tiktoken";
  m.kind = TokenizerKind::kBpe;
  m.byte_level = true;
  m.escape_spaces = false;
  m.prepend = PrependScheme::kNever;
  // Only Llama 3 ships this format for Llama-family models: its regex, its
  // ignore_merges, its 256 special tokens.
  m.pre_name = "llama-bpe";
  m.pre_regexes = PreTokenizer::family_regexes(m.pre_name);
  m.ignore_merges = true;
  m.add_bos = true;

  std::unordered_map<std::string_view, int32_t> rank_of;  // views into by_rank
  rank_of.reserve(by_rank.size());
  for (size_t r = 0; r < by_rank.size(); ++r) rank_of.emplace(by_rank[r], static_cast<int32_t>(r));
  m.vocab.tokens.resize(by_rank.size());
  for (size_t r = 0; r < by_rank.size(); ++r) m.vocab.tokens[r].text = byte_level_encode(by_rank[r]);

  // Every split of a token into two tokens is a merge of that token's rank;
  // within one token, splits are ordered by the ranks of their sides.
  struct M {
    int32_t rank, l, r;
  };
  std::vector<M> merges;
  for (size_t r = 0; r < by_rank.size(); ++r) {
    const std::string_view t = by_rank[r];
    for (size_t i = 1; i < t.size(); ++i) {
      auto a = rank_of.find(t.substr(0, i));
      if (a == rank_of.end()) continue;
      auto b = rank_of.find(t.substr(i));
      if (a != rank_of.end() && b != rank_of.end()) merges.push_back({static_cast<int32_t>(r), a->second, b->second});
    }
  }
  std::sort(merges.begin(), merges.end(), [](const M& x, const M& y) {
    return std::tie(x.rank, x.l, x.r) < std::tie(y.rank, y.l, y.r);
  });
  m.merge_list.reserve(merges.size());
  for (const M& mm : merges) {
    m.merge_list.emplace_back(m.vocab.tokens[static_cast<size_t>(mm.l)].text,
                              m.vocab.tokens[static_cast<size_t>(mm.r)].text);
  }

  const size_t n_base = by_rank.size();
  for (const std::string& s : llama3_special_tokens(256)) {
    TokenData t;
    t.text = s;
    t.type = TokenType::kControl;
    m.vocab.tokens.push_back(std::move(t));
  }
  m.vocab.bos = static_cast<int32_t>(n_base);
  m.vocab.eos = static_cast<int32_t>(n_base + 1);
  return m;
}

}  // namespace hanul
