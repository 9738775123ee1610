#include "hanul/tokenizer/vocab.h"

#include <algorithm>
#include <cctype>

namespace hanul {

void Vocab::finalize() {
  text_to_id_.clear();
  text_to_id_.reserve(tokens.size());
  for (size_t i = 0; i < tokens.size(); ++i) {
    auto& t = tokens[i];
    if (t.text.empty()) t.text = "[EMPTY_" + std::to_string(i) + "]";
    // On duplicate texts the later id wins, as in llama.cpp's token_to_id.
    text_to_id_[t.text] = static_cast<int32_t>(i);
  }

  // Tokens that end a generation are known by name in the wild; llama.cpp
  // (llama-vocab.cpp, "auto-detect special tokens by text") marks them as
  // control so they are never produced from plain text.
  static constexpr std::string_view kEogNames[] = {
      "<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>", "<|endoftext|>",
      "<|eom_id|>", "<EOT>",
  };
  eog.clear();
  for (std::string_view name : kEogNames) {
    const int32_t id = find(name);
    if (id < 0) continue;
    tokens[static_cast<size_t>(id)].type = TokenType::kControl;
    eog.push_back(id);
    if (eot < 0 && name != "<|eom_id|>") eot = id;
  }
  for (int32_t id : {eos, eot}) {
    if (valid(id) && std::find(eog.begin(), eog.end(), id) == eog.end()) eog.push_back(id);
  }

  special_by_length_.clear();
  for (int32_t id = 0; id < n_tokens(); ++id) {
    const TokenType t = at(id).type;
    if (t == TokenType::kControl || t == TokenType::kUserDefined || t == TokenType::kUnknown) {
      special_by_length_.push_back(id);
    }
  }
  std::stable_sort(special_by_length_.begin(), special_by_length_.end(),
                   [&](int32_t a, int32_t b) { return at(a).text.size() > at(b).text.size(); });
}

std::vector<Fragment> Vocab::partition(std::string_view text, bool parse_special) const {
  std::vector<Fragment> frags;
  if (text.empty()) return frags;
  frags.push_back({-1, 0, text.size()});
  std::vector<Fragment> next;
  for (int32_t id : special_by_length_) {
    const TokenData& tok = at(id);
    if (!parse_special && tok.type != TokenType::kUserDefined) continue;
    const std::string_view needle = tok.text;
    bool any = false;
    for (const Fragment& f : frags) {
      if (f.token >= 0 || f.length < needle.size() ||
          text.substr(f.offset, f.length).find(needle) == std::string_view::npos) {
        continue;
      }
      any = true;
      break;
    }
    if (!any) continue;
    next.clear();
    for (const Fragment& f : frags) {
      if (f.token >= 0) {
        next.push_back(f);
        continue;
      }
      size_t start = f.offset;
      const size_t end = f.offset + f.length;
      while (start < end) {
        const size_t m = text.substr(0, end).find(needle, start);
        if (m == std::string_view::npos) break;
        size_t left_end = m;
        if (tok.lstrip) {
          while (left_end > start && std::isspace(static_cast<unsigned char>(text[left_end - 1]))) --left_end;
        }
        if (left_end > start) next.push_back({-1, start, left_end - start});
        next.push_back({id, m, needle.size()});
        start = m + needle.size();
        if (tok.rstrip) {
          while (start < end && std::isspace(static_cast<unsigned char>(text[start]))) ++start;
        }
      }
      if (start < end) next.push_back({-1, start, end - start});
    }
    frags.swap(next);
  }
  return frags;
}

}  // namespace hanul
