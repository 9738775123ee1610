// SentencePiece BPE (Llama 2, Mistral, SOLAR): merge the adjacent pair whose
// merged piece has the highest score, until no pair is a piece; pieces that
// never formed a token fall back to <0xXX> byte tokens. The algorithm of
// sentencepiece's bpe_model.cc, in the form llama.cpp's llm_tokenizer_spm
// uses (symbols are UTF-8 characters; ties go to the leftmost pair).
#pragma once

#include <cstdint>
#include <string_view>
#include <vector>

#include "hanul/tokenizer/vocab.h"

namespace hanul {

// text must already carry the ▁ space marker (and the dummy prefix).
void spm_bpe_encode(const Vocab& vocab, std::string_view text, std::vector<int32_t>& out);

// The <0xXX> token of a byte, or -1.
int32_t spm_byte_token(const Vocab& vocab, uint8_t byte);

}  // namespace hanul
