#include "hanul/tokenizer/wordpiece.h"

#include <unicode/uchar.h>
#include <unicode/unorm2.h>
#include <unicode/ustring.h>
#include <unicode/utf16.h>

#include <algorithm>

#include "hanul/base/utf8.h"

namespace hanul {
namespace {

// UTF-8 -> UTF-16 for ICU, U+FFFD for invalid bytes.
std::u16string to_utf16(std::string_view text) {
  std::u16string out(text.size() + 1, u'\0');
  int32_t n = 0;
  UErrorCode err = U_ZERO_ERROR;
  u_strFromUTF8WithSub(reinterpret_cast<UChar*>(out.data()), static_cast<int32_t>(out.size()), &n,
                       text.data(), static_cast<int32_t>(text.size()), 0xFFFD, nullptr, &err);
  if (U_FAILURE(err)) return {};
  out.resize(static_cast<size_t>(n));
  return out;
}

// Runs an ICU UTF-16 transform that may grow its input, retrying once with
// the size ICU asks for.
template <typename F>
std::u16string icu_transform(const std::u16string& in, F&& f) {
  std::u16string out(in.size() * 3 + 16, u'\0');
  UErrorCode err = U_ZERO_ERROR;
  int32_t n = f(reinterpret_cast<const UChar*>(in.data()), static_cast<int32_t>(in.size()),
                reinterpret_cast<UChar*>(out.data()), static_cast<int32_t>(out.size()), &err);
  if (err == U_BUFFER_OVERFLOW_ERROR) {
    err = U_ZERO_ERROR;
    out.resize(static_cast<size_t>(n));
    n = f(reinterpret_cast<const UChar*>(in.data()), static_cast<int32_t>(in.size()),
          reinterpret_cast<UChar*>(out.data()), static_cast<int32_t>(out.size()), &err);
  }
  if (U_FAILURE(err)) return in;  // ICU data missing: leave the text as it is
  out.resize(static_cast<size_t>(n));
  return out;
}

// CJK ideograph blocks that BERT cuts into single-character words (HF
// BasicTokenizer._is_chinese_char, as llama.cpp's is_chinese_char lists them:
// the Extension C..F block starts at 0x2B920 there, not 0x2B820).
bool is_cjk_ideograph(uint32_t cp) {
  return (cp >= 0x4E00 && cp <= 0x9FFF) || (cp >= 0x3400 && cp <= 0x4DBF) ||
         (cp >= 0x20000 && cp <= 0x2A6DF) || (cp >= 0x2A700 && cp <= 0x2B73F) ||
         (cp >= 0x2B740 && cp <= 0x2B81F) || (cp >= 0x2B920 && cp <= 0x2CEAF) ||
         (cp >= 0xF900 && cp <= 0xFAFF) || (cp >= 0x2F800 && cp <= 0x2FA1F);
}

// BERT's punctuation: every category P code point and every non-letter,
// non-digit printable ASCII character (so $ + < = > ^ ` | ~ too).
bool is_bert_punctuation(uint32_t cp) {
  if (cp < 0x7F) return (cp >= 33 && cp <= 47) || (cp >= 58 && cp <= 64) || (cp >= 91 && cp <= 96) ||
                        (cp >= 123 && cp <= 126);
  return (U_GET_GC_MASK(static_cast<UChar32>(cp)) & U_GC_P_MASK) != 0;
}

}  // namespace

std::vector<std::string> wordpiece_words(std::string_view text, bool lowercase) {
  std::u16string u = to_utf16(text);
  if (lowercase) {
    // Full lowercase (root locale), then NFD so that accents become
    // separate nonspacing marks we can drop (HF _run_strip_accents).
    u = icu_transform(u, [](const UChar* src, int32_t n, UChar* dst, int32_t cap, UErrorCode* err) {
      return u_strToLower(dst, cap, src, n, "", err);
    });
    UErrorCode err = U_ZERO_ERROR;
    const UNormalizer2* nfd = unorm2_getNFDInstance(&err);
    if (U_SUCCESS(err)) {
      u = icu_transform(u, [nfd](const UChar* src, int32_t n, UChar* dst, int32_t cap, UErrorCode* e) {
        return unorm2_normalize(nfd, src, n, dst, cap, e);
      });
    }
  }
  std::vector<std::string> words;
  std::string cur;
  auto finish = [&] {
    if (!cur.empty()) words.push_back(std::move(cur));
    cur.clear();
  };
  const int32_t n = static_cast<int32_t>(u.size());
  for (int32_t i = 0; i < n;) {
    UChar32 c;
    U16_NEXT(u.data(), i, n, c);
    const uint32_t cp = static_cast<uint32_t>(c);
    if (u_isUWhiteSpace(c)) {  // White_Space: \t \n \v \f \r, Zs, U+0085, U+2028, ...
      finish();
      continue;
    }
    // Dropped: NUL, U+FFFD, category C (controls, format chars such as
    // U+200B, lone surrogates, unassigned).
    if (cp == 0 || cp == 0xFFFD || (U_GET_GC_MASK(c) & U_GC_C_MASK) != 0) continue;
    if (lowercase && u_charType(c) == U_NON_SPACING_MARK) continue;
    if (is_bert_punctuation(cp) || is_cjk_ideograph(cp)) {
      finish();
      utf8_append(cur, cp);
      finish();
      continue;
    }
    utf8_append(cur, cp);
  }
  finish();
  return words;
}

WordPiece WordPiece::build(const Vocab& vocab, WordPieceOptions opts) {
  WordPiece wp;
  wp.opts_ = std::move(opts);
  for (const TokenData& t : vocab.tokens) wp.max_token_bytes_ = std::max(wp.max_token_bytes_, t.text.size());
  return wp;
}

bool WordPiece::encode_word(const Vocab& vocab, std::string_view word, std::vector<int32_t>& out) const {
  // The word as the vocab spells its start: "▁" + word (GGUF) or word (HF).
  std::string w = opts_.word_prefix;
  w.append(word);
  const size_t start_out = out.size();
  std::string key;
  size_t i = 0;
  while (i < w.size()) {
    // Longest piece first (HF WordPiece / BERT's greedy longest-match-first).
    const std::string_view cont = i == 0 ? std::string_view() : std::string_view(opts_.continuation);
    size_t j = std::min(w.size(), i + max_token_bytes_);
    int32_t id = -1;
    for (; j > i; --j) {
      // Only whole characters: a cut inside a UTF-8 sequence is no token.
      if (j < w.size() && (static_cast<uint8_t>(w[j]) & 0xC0) == 0x80) continue;
      key.assign(cont);
      key.append(w, i, j - i);
      id = vocab.find(key);
      if (id >= 0) break;
    }
    if (id < 0) {
      out.resize(start_out);
      return false;
    }
    out.push_back(id);
    i = j;
  }
  return true;
}

void WordPiece::encode(const Vocab& vocab, std::string_view text, std::vector<int32_t>& out) const {
  for (const std::string& word : wordpiece_words(text, opts_.lowercase)) {
    size_t n_chars = 0;
    for (char c : word) n_chars += (static_cast<uint8_t>(c) & 0xC0) != 0x80;
    if (n_chars <= opts_.max_chars_per_word && encode_word(vocab, word, out)) continue;
    if (vocab.valid(vocab.unk)) out.push_back(vocab.unk);  // the whole word is one [UNK]
  }
}

std::string WordPiece::piece(const Vocab& vocab, int32_t id) const {
  const std::string& t = vocab.at(id).text;
  if (!opts_.continuation.empty()) {
    if (t.starts_with(opts_.continuation)) return t.substr(opts_.continuation.size());
    if (opts_.word_prefix.empty()) return " " + t;
  }
  if (!opts_.word_prefix.empty() && t.starts_with(opts_.word_prefix)) {
    return " " + t.substr(opts_.word_prefix.size());
  }
  return t;
}

}  // namespace hanul
