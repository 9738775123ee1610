// UTF-8 helpers shared by the tokenizers and the token stream (RFC 3629).
// Decoding is strict: overlong forms, surrogates and code points past
// U+10FFFF are invalid. Callers decide what an invalid byte becomes.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace hanul {

inline constexpr uint32_t kUtf8Replacement = 0xFFFD;

// Length of the sequence a lead byte announces, as SentencePiece and
// llama.cpp count it: 1 for ASCII and for stray continuation bytes.
inline size_t utf8_len(uint8_t lead) {
  static constexpr uint8_t kLen[16] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 3, 4};
  return kLen[lead >> 4];
}

// Decodes one code point at text[pos]. On success returns true, sets *cp and
// *len; on an invalid or truncated sequence returns false with *len = 1.
bool utf8_decode(std::string_view text, size_t pos, uint32_t* cp, size_t* len);

// Appends the UTF-8 encoding of cp (cp must be a valid scalar value).
void utf8_append(std::string& out, uint32_t cp);
std::string utf8_encode(uint32_t cp);

// Code points of text; each invalid byte becomes U+FFFD (as llama.cpp's
// unicode_cpts_from_utf8 does), so the result always has a valid encoding.
std::vector<uint32_t> utf8_to_codepoints(std::string_view text);

bool utf8_is_valid(std::string_view text);

// The text with every invalid or truncated sequence replaced by U+FFFD, as
// llama.cpp's unicode_cpts_from_utf8 does (HF tokenizers only sees valid str).
std::string sanitize_utf8(std::string_view text);

// Number of bytes at the end of text that start a valid but unfinished
// sequence (0 to 3). A streaming decoder holds these back until the rest
// arrives.
size_t utf8_incomplete_tail(std::string_view text);

}  // namespace hanul
