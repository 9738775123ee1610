// Unicode Normalization Form C (UAX #15), the "NFC" normalizer of HF
// tokenizer.json (Qwen2): canonical decomposition, then canonical
// composition, so that decomposed Hangul jamo (U+1100 ᄒ + U+1161 ᅡ + U+11AB ᆫ)
// become the syllable (U+D55C 한) the vocabulary was trained on. Backed by
// ICU's normalizer (unorm2_getNFCInstance), the same data HF tokenizers'
// unicode-normalization crate follows.
#pragma once

#include <string>
#include <string_view>

namespace hanul {

// text in NFC. Invalid UTF-8 sequences come out as U+FFFD (ICU's
// conversion substitutes them), valid text that is already NFC unchanged.
std::string nfc_normalize(std::string_view text);

// True when text is surely NFC without looking it up: it has no code point
// at or above U+0300, the first that can decompose or combine (lead bytes
// 0xCC and up). Lets ASCII and Latin-1 text skip ICU.
bool nfc_trivially_normalized(std::string_view text);

}  // namespace hanul
