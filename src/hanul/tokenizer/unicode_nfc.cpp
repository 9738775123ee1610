#include "hanul/tokenizer/unicode_nfc.h"

#include <unicode/unorm2.h>
#include <unicode/ustring.h>

#include <vector>

namespace hanul {

bool nfc_trivially_normalized(std::string_view text) {
  for (char c : text) {
    if (static_cast<uint8_t>(c) >= 0xCC) return false;
  }
  return true;
}

std::string nfc_normalize(std::string_view text) {
  if (nfc_trivially_normalized(text)) return std::string(text);
  UErrorCode err = U_ZERO_ERROR;
  const UNormalizer2* nfc = unorm2_getNFCInstance(&err);
  if (U_FAILURE(err)) return std::string(text);  // ICU data missing: leave the text as it is
  // UTF-8 -> UTF-16 (ICU's normalizer works on UTF-16), U+FFFD for bad bytes.
  std::vector<UChar> in(text.size() + 1);
  int32_t n_in = 0;
  u_strFromUTF8WithSub(in.data(), static_cast<int32_t>(in.size()), &n_in, text.data(),
                       static_cast<int32_t>(text.size()), 0xFFFD, nullptr, &err);
  if (U_FAILURE(err)) return std::string(text);
  // NFC never grows text by more than 3x (UAX #15 "Stabilization"); ask ICU
  // for the size on overflow all the same.
  std::vector<UChar> out(static_cast<size_t>(n_in) * 3 + 16);
  int32_t n_out = unorm2_normalize(nfc, in.data(), n_in, out.data(), static_cast<int32_t>(out.size()), &err);
  if (err == U_BUFFER_OVERFLOW_ERROR) {
    err = U_ZERO_ERROR;
    out.resize(static_cast<size_t>(n_out));
    n_out = unorm2_normalize(nfc, in.data(), n_in, out.data(), static_cast<int32_t>(out.size()), &err);
  }
  if (U_FAILURE(err)) return std::string(text);
  std::string result(static_cast<size_t>(n_out) * 3, '\0');
  int32_t n_bytes = 0;
  u_strToUTF8(result.data(), static_cast<int32_t>(result.size()), &n_bytes, out.data(), n_out, &err);
  if (U_FAILURE(err)) return std::string(text);
  result.resize(static_cast<size_t>(n_bytes));
  return result;
}

}  // namespace hanul
