// Tokenizer from a SentencePiece model file (Llama 2, Mistral
// tokenizer.model): a serialized sentencepiece.ModelProto
// (sentencepiece_model.proto). Only the fields a BPE model needs are read:
//   ModelProto     1: pieces (repeated SentencePiece), 2: trainer_spec,
//                  3: normalizer_spec
//   SentencePiece  1: piece (string), 2: score (float), 3: type (enum)
//   TrainerSpec    3: model_type (1 unigram, 2 bpe), 35: byte_fallback,
//                  40: unk_id, 41: bos_id, 42: eos_id, 43: pad_id
//   NormalizerSpec 3: add_dummy_prefix, 4: remove_extra_whitespaces,
//                  5: escape_whitespaces
// The wire format is protobuf's (varint, fixed32, length-delimited); every
// length is checked against the bytes that remain.
#include <cstring>

#include <fmt/core.h>

#include "hanul/base/mapped_file.h"
#include "hanul/tokenizer/tokenizer_model.h"

namespace hanul {
namespace {

class Reader {
 public:
  Reader(const uint8_t* p, size_t n) : p_(p), end_(p + n) {}
  bool done() const { return p_ >= end_; }
  bool varint(uint64_t* v) {
    *v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      if (p_ >= end_) return false;
      const uint8_t b = *p_++;
      *v |= static_cast<uint64_t>(b & 0x7F) << shift;
      if (!(b & 0x80)) return true;
    }
    return false;
  }
  // Reads one field: its number, wire type, and (for scalars) value or
  // (for length-delimited) a sub-reader.
  bool field(uint32_t* number, uint32_t* wire, uint64_t* value, Reader* sub) {
    uint64_t tag;
    if (!varint(&tag)) return false;
    *number = static_cast<uint32_t>(tag >> 3);
    *wire = static_cast<uint32_t>(tag & 7);
    switch (*wire) {
      case 0:
        return varint(value);
      case 1:
        if (end_ - p_ < 8) return false;
        std::memcpy(value, p_, 8);
        p_ += 8;
        return true;
      case 2: {
        uint64_t len;
        if (!varint(&len) || len > static_cast<uint64_t>(end_ - p_)) return false;
        *sub = Reader(p_, static_cast<size_t>(len));
        p_ += len;
        return true;
      }
      case 5: {
        if (end_ - p_ < 4) return false;
        uint32_t v;
        std::memcpy(&v, p_, 4);
        *value = v;
        p_ += 4;
        return true;
      }
      default:
        return false;
    }
  }
  std::string_view bytes() const { return {reinterpret_cast<const char*>(p_), static_cast<size_t>(end_ - p_)}; }

 private:
  const uint8_t* p_;
  const uint8_t* end_;
};

}  // namespace

Result<TokenizerModel> load_sentencepiece_model(const std::string& path) {
  HANUL_ASSIGN_OR_RETURN(auto file, MappedFile::open(path));
  TokenizerModel m;
  m.source = path;
  m.name = "llama";
  m.kind = TokenizerKind::kSpm;
  m.add_bos = true;
  int64_t model_type = 1, unk = 0, bos = 1, eos = 2, pad = -1;
  bool dummy_prefix = true, remove_ws = true, escape_ws = true;
  auto bad = [&](const char* what) {
    return Error{fmt::format("tokenizer: '{}' is not a valid SentencePiece model ({})", path, what)};
  };
  Reader r(file->data(), file->size());
  while (!r.done()) {
    uint32_t num, wire;
    uint64_t val = 0;
    Reader sub(nullptr, 0);
    if (!r.field(&num, &wire, &val, &sub)) return bad("truncated field");
    if (num == 1 && wire == 2) {
      TokenData t;
      t.type = TokenType::kNormal;
      while (!sub.done()) {
        uint32_t n2, w2;
        uint64_t v2 = 0;
        Reader s2(nullptr, 0);
        if (!sub.field(&n2, &w2, &v2, &s2)) return bad("truncated piece");
        if (n2 == 1 && w2 == 2) t.text = std::string(s2.bytes());
        if (n2 == 2 && w2 == 5) {
          const auto bits = static_cast<uint32_t>(v2);
          std::memcpy(&t.score, &bits, 4);
        }
        if (n2 == 3 && w2 == 0) t.type = v2 <= 6 ? static_cast<TokenType>(v2) : TokenType::kUndefined;
      }
      m.vocab.tokens.push_back(std::move(t));
    } else if ((num == 2 || num == 3) && wire == 2) {
      while (!sub.done()) {
        uint32_t n2, w2;
        uint64_t v2 = 0;
        Reader s2(nullptr, 0);
        if (!sub.field(&n2, &w2, &v2, &s2)) return bad("truncated spec");
        if (w2 != 0) continue;
        const auto sv = static_cast<int64_t>(static_cast<int32_t>(v2));  // int32 fields
        if (num == 2) {
          if (n2 == 3) model_type = sv;
          if (n2 == 35) m.byte_fallback = v2 != 0;
          if (n2 == 40) unk = sv;
          if (n2 == 41) bos = sv;
          if (n2 == 42) eos = sv;
          if (n2 == 43) pad = sv;
        } else {
          if (n2 == 3) dummy_prefix = v2 != 0;
          if (n2 == 4) remove_ws = v2 != 0;
          if (n2 == 5) escape_ws = v2 != 0;
        }
      }
    }
  }
  if (m.vocab.tokens.empty()) return bad("no pieces");
  if (model_type != 2) {
    return Error{fmt::format("tokenizer: '{}' is a SentencePiece model of type {} ({}); only BPE (2) is "
                             "supported", path, model_type, model_type == 1 ? "unigram" : "other")};
  }
  if (remove_ws) {
    return Error{fmt::format("tokenizer: '{}': SentencePiece remove_extra_whitespaces=true is not "
                             "supported (Llama and Mistral models set it false)", path)};
  }
  m.escape_spaces = escape_ws;
  m.prepend = dummy_prefix ? PrependScheme::kAlways : PrependScheme::kNever;
  const auto n = static_cast<int64_t>(m.vocab.tokens.size());
  auto id = [&](int64_t v) { return v >= 0 && v < n ? static_cast<int32_t>(v) : -1; };
  m.vocab.unk = id(unk);
  m.vocab.bos = id(bos);
  m.vocab.eos = id(eos);
  m.vocab.pad = id(pad);
  return m;
}

}  // namespace hanul
