// The pre-tokenizer of byte-level BPE: a list of regexes that cut text into
// words before merging. Each regex is applied in turn to every piece the
// previous ones left; both the matches and the text between them become
// pieces (HF tokenizers' Split with behavior "Isolated"; llama.cpp's
// unicode_regex_split). A regex never looks past the piece it is applied to.
//
// Regexes run on PCRE2 with PCRE2_UTF | PCRE2_UCP, so \p{L}, \p{N}, \p{P}
// are the real Unicode categories. \s and \S are rewritten to the Unicode
// White_Space set (U+0085, U+00A0, U+2000..U+200A, ...), which is what both
// Oniguruma (HF tokenizers) and llama.cpp's tables mean by \s and which
// PCRE2's own \s (Z categories + ASCII controls) misses in U+0085.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "hanul/base/result.h"

namespace hanul {

class PreTokenizer {
 public:
  // The regex list of a llama.cpp pre-tokenizer family (tokenizer.ggml.pre):
  // "gpt-2", "llama-bpe", "qwen2", "deepseek-coder", "deepseek-llm",
  // "falcon", "mpt", "starcoder", "refact", "default", ...
  static Result<PreTokenizer> for_family(std::string_view name);
  static Result<PreTokenizer> from_regexes(std::vector<std::string> regexes);
  // The regex list a family name stands for, or an empty list if unknown.
  static std::vector<std::string> family_regexes(std::string_view name);

  // Appends the words of text[0..n) as (offset, length) byte ranges. text
  // must be valid UTF-8.
  void split(std::string_view text, std::vector<std::pair<size_t, size_t>>& words) const;
  bool empty() const { return regexes_.empty(); }

 private:
  struct Compiled;
  std::vector<std::shared_ptr<const Compiled>> regexes_;
};

}  // namespace hanul
