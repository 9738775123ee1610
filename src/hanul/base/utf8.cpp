#include "hanul/base/utf8.h"

namespace hanul {

bool utf8_decode(std::string_view text, size_t pos, uint32_t* cp, size_t* len) {
  *len = 1;
  const auto* s = reinterpret_cast<const uint8_t*>(text.data());
  const size_t n = text.size();
  const uint8_t b0 = s[pos];
  if (b0 < 0x80) {
    *cp = b0;
    return true;
  }
  size_t need;
  uint32_t v, min;
  if ((b0 & 0xE0) == 0xC0) {
    need = 2, v = b0 & 0x1F, min = 0x80;
  } else if ((b0 & 0xF0) == 0xE0) {
    need = 3, v = b0 & 0x0F, min = 0x800;
  } else if ((b0 & 0xF8) == 0xF0) {
    need = 4, v = b0 & 0x07, min = 0x10000;
  } else {
    return false;
  }
  if (pos + need > n) return false;
  for (size_t i = 1; i < need; ++i) {
    const uint8_t b = s[pos + i];
    if ((b & 0xC0) != 0x80) return false;
    v = (v << 6) | (b & 0x3F);
  }
  if (v < min || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF)) return false;
  *cp = v;
  *len = need;
  return true;
}

void utf8_append(std::string& out, uint32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

std::string utf8_encode(uint32_t cp) {
  std::string s;
  utf8_append(s, cp);
  return s;
}

std::vector<uint32_t> utf8_to_codepoints(std::string_view text) {
  std::vector<uint32_t> cps;
  cps.reserve(text.size());
  size_t pos = 0;
  while (pos < text.size()) {
    uint32_t cp;
    size_t len;
    cps.push_back(utf8_decode(text, pos, &cp, &len) ? cp : kUtf8Replacement);
    pos += len;
  }
  return cps;
}

bool utf8_is_valid(std::string_view text) {
  size_t pos = 0;
  while (pos < text.size()) {
    uint32_t cp;
    size_t len;
    if (!utf8_decode(text, pos, &cp, &len)) return false;
    pos += len;
  }
  return true;
}

// Is s[0..n) (n < need) the start of some valid sequence? The second byte is
// range-limited after E0, ED, F0 and F4 (RFC 3629 section 4).
static bool valid_prefix(const uint8_t* s, size_t n, size_t need) {
  const uint8_t b0 = s[0];
  if (b0 == 0xC0 || b0 == 0xC1 || b0 > 0xF4) return false;
  if (n >= 2) {
    const uint8_t b1 = s[1];
    if (b0 == 0xE0 && b1 < 0xA0) return false;
    if (b0 == 0xED && b1 > 0x9F) return false;
    if (b0 == 0xF0 && b1 < 0x90) return false;
    if (b0 == 0xF4 && b1 > 0x8F) return false;
  }
  return n < need;
}

size_t utf8_incomplete_tail(std::string_view text) {
  const auto* s = reinterpret_cast<const uint8_t*>(text.data());
  const size_t n = text.size();
  // Walk back over at most 3 continuation bytes to the lead byte.
  for (size_t back = 1; back <= 4 && back <= n; ++back) {
    const uint8_t b = s[n - back];
    if ((b & 0xC0) == 0x80) continue;
    size_t need = 0;
    if ((b & 0xE0) == 0xC0) need = 2;
    else if ((b & 0xF0) == 0xE0) need = 3;
    else if ((b & 0xF8) == 0xF0) need = 4;
    if (need == 0 || back >= need) return 0;  // ASCII, invalid lead, or complete
    return valid_prefix(s + n - back, back, need) ? back : 0;
  }
  return 0;
}

std::string sanitize_utf8(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  size_t pos = 0;
  while (pos < text.size()) {
    uint32_t cp;
    size_t len;
    if (utf8_decode(text, pos, &cp, &len)) {
      out.append(text.substr(pos, len));
    } else {
      utf8_append(out, kUtf8Replacement);
    }
    pos += len;
  }
  return out;
}

}  // namespace hanul
