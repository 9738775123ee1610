#include "hanul/tokenizer/tokenizer.h"

#include <algorithm>
#include <filesystem>
#include <fstream>

#include <fmt/core.h>

#include "hanul/base/utf8.h"
#include "hanul/tokenizer/spm_bpe.h"
#include "hanul/tokenizer/unicode_nfc.h"
#include "hanul/tokenizer/tokenizer_model.h"

namespace hanul {
namespace {

constexpr std::string_view kSpace = "\xE2\x96\x81";  // ▁ U+2581

void replace_all(std::string& s, std::string_view from, std::string_view to) {
  size_t pos = 0;
  while ((pos = s.find(from, pos)) != std::string::npos) {
    s.replace(pos, from.size(), to);
    pos += to.size();
  }
}


std::string piece_of(const TokenizerModel& m, int32_t id) {
  const TokenData& t = m.vocab.at(id);
  switch (t.type) {
    case TokenType::kControl:
    case TokenType::kUnknown:
    case TokenType::kUserDefined:
      return t.text;
    case TokenType::kByte:
      if (!m.byte_level && t.text.size() == 6 && t.text.starts_with("<0x") && t.text[5] == '>') {
        return std::string(1, static_cast<char>(std::stoi(t.text.substr(3, 2), nullptr, 16)));
      }
      break;
    default:
      break;
  }
  if (m.kind == TokenizerKind::kWordPiece) return m.wordpiece->piece(m.vocab, id);
  if (m.byte_level) {
    std::string bytes;
    byte_level_decode(t.text, &bytes);
    return bytes;
  }
  std::string s = t.text;
  if (m.escape_spaces) replace_all(s, kSpace, " ");
  return s;
}

}  // namespace

Result<Tokenizer> Tokenizer::from_model(TokenizerModel model) {
  auto m = std::make_shared<TokenizerModel>(std::move(model));
  if (m->vocab.tokens.empty()) return Error{fmt::format("tokenizer: '{}' has no tokens", m->source)};
  m->vocab.finalize();
  if (m->kind == TokenizerKind::kBpe) {
    HANUL_ASSIGN_OR_RETURN(BpeMerges merges, BpeMerges::build(m->vocab, m->merge_list));
    m->merges = std::move(merges);
    m->merge_list.clear();
    m->merge_list.shrink_to_fit();
    if (m->byte_level) {
      HANUL_ASSIGN_OR_RETURN(m->pre, PreTokenizer::from_regexes(m->pre_regexes));
      m->byte_symbol.resize(256);
      for (int b = 0; b < 256; ++b) {
        m->byte_symbol[static_cast<size_t>(b)] = m->merges->symbol_id(byte_level_char(static_cast<uint8_t>(b)));
      }
    }
  }
  if (m->kind == TokenizerKind::kWordPiece) m->wordpiece = WordPiece::build(m->vocab, m->wordpiece_opts);
  m->pieces.resize(m->vocab.tokens.size());
  for (int32_t id = 0; id < m->vocab.n_tokens(); ++id) m->pieces[static_cast<size_t>(id)] = piece_of(*m, id);
  Tokenizer t;
  t.m_ = std::move(m);
  return t;
}

// Picks the loader by the file's first bytes, not its name: GGUF magic, a
// JSON object (tokenizer.json), a protobuf (SentencePiece), else tiktoken ranks.
Result<TokenizerModel> load_tokenizer_file(const std::string& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in) return Error{fmt::format("tokenizer: cannot open '{}'", file)};
  char head[64] = {};
  in.read(head, sizeof(head));
  const std::string_view h(head, static_cast<size_t>(in.gcount()));
  in.close();
  const size_t first = h.find_first_not_of(" \t\r\n");
  if (h.starts_with("GGUF")) return load_gguf_tokenizer(file);
  if (first != std::string_view::npos && h[first] == '{') return load_hf_tokenizer_json(file);
  if (!h.empty() && h[0] == 0x0A) return load_sentencepiece_model(file);  // protobuf field 1 (pieces)
  return load_tiktoken(file);
}

Result<Tokenizer> Tokenizer::load(const std::string& path) {
  namespace fs = std::filesystem;
  std::error_code ec;
  std::string file = path;
  if (fs::is_directory(path, ec)) {
    file.clear();
    for (const char* name : {"tokenizer.json", "tokenizer.model"}) {
      if (fs::exists(fs::path(path) / name, ec)) {
        file = (fs::path(path) / name).string();
        break;
      }
    }
    if (file.empty()) {
      for (const auto& e : fs::directory_iterator(path, ec)) {
        if (e.path().extension() == ".gguf") {
          file = e.path().string();
          break;
        }
      }
    }
    if (file.empty()) {
      return Error{fmt::format("tokenizer: folder '{}' has no tokenizer.json, tokenizer.model or .gguf", path)};
    }
  }
  HANUL_ASSIGN_OR_RETURN(TokenizerModel model, load_tokenizer_file(file));
  return from_model(std::move(model));
}

std::vector<int32_t> Tokenizer::encode(std::string_view text, bool add_special,
                                       bool parse_special) const {
  const TokenizerModel& m = *m_;
  const Vocab& v = m.vocab;
  std::vector<int32_t> out;
  if (add_special && m.add_bos && v.valid(v.bos)) out.push_back(v.bos);

  const std::vector<Fragment> frags = v.partition(text, parse_special);
  bool prev_special = true;  // the dummy prefix goes before text that follows a token
  bool first_text = true;
  std::vector<std::pair<size_t, size_t>> words;
  std::vector<int32_t> syms;
  for (const Fragment& f : frags) {
    if (f.token >= 0) {
      out.push_back(f.token);
      prev_special = true;
      continue;
    }
    std::string_view raw = text.substr(f.offset, f.length);
    // HF tokenizers normalizes each piece between added tokens (NFC first).
    std::string normalized;
    if (m.nfc && !nfc_trivially_normalized(raw)) {
      normalized = nfc_normalize(raw);
      raw = normalized;
    }
    if (m.kind == TokenizerKind::kWordPiece) {
      m.wordpiece->encode(v, raw, out);
    } else if (m.kind == TokenizerKind::kSpm || !m.byte_level) {
      // SentencePiece text handling: dummy prefix, then ' ' -> '▁'.
      const bool prepend = m.prepend == PrependScheme::kAlways ? prev_special
                           : m.prepend == PrependScheme::kFirst ? first_text
                                                                : false;
      std::string s = prepend ? " " : "";
      s.append(raw);
      if (m.escape_spaces) replace_all(s, " ", kSpace);
      if (m.kind == TokenizerKind::kSpm) {
        spm_bpe_encode(v, s, out);
      } else {
        // HF BPE over characters with byte fallback (Llama 2 tokenizer.json).
        words.clear();
        if (m.metaspace_split) {
          size_t start = 0;
          for (size_t p = s.find(kSpace, 1); p != std::string::npos; p = s.find(kSpace, p + 1)) {
            words.emplace_back(start, p - start);
            start = p;
          }
          words.emplace_back(start, s.size() - start);
        } else {
          words.emplace_back(0, s.size());
        }
        for (const auto& [wo, wl] : words) {
          const std::string_view word = std::string_view(s).substr(wo, wl);
          syms.clear();
          std::vector<std::string_view> unknown;  // chars with no token, by -2 - index
          size_t pos = 0;
          while (pos < word.size()) {
            const size_t n = std::min(utf8_len(static_cast<uint8_t>(word[pos])), word.size() - pos);
            const std::string_view ch = word.substr(pos, n);
            const int32_t id = m.merges->symbol_id(ch);
            if (id >= 0) {
              syms.push_back(id);
            } else {
              syms.push_back(-2 - static_cast<int32_t>(unknown.size()));
              unknown.push_back(ch);
            }
            pos += n;
          }
          m.merges->merge(syms);
          for (int32_t id : syms) {
            if (id >= 0 && id < v.n_tokens()) {
              out.push_back(id);
              continue;
            }
            const std::string_view bytes = id >= 0 ? std::string_view(m.merges->extra_text(id))
                                                   : unknown[static_cast<size_t>(-2 - id)];
            bool all = m.byte_fallback;
            std::vector<int32_t> b;
            for (char c : bytes) {
              const int32_t bt = spm_byte_token(v, static_cast<uint8_t>(c));
              if (bt < 0) all = false;
              b.push_back(bt);
            }
            if (all) {
              out.insert(out.end(), b.begin(), b.end());
            } else if (v.valid(v.unk) && !(out.size() && out.back() == v.unk)) {
              out.push_back(v.unk);  // HF fuse_unk: one <unk> for a run
            }
          }
        }
      }
    } else {
      // Byte-level BPE: regex words, each spelled in GPT-2's byte alphabet.
      std::string clean;
      std::string_view t = raw;
      if (!utf8_is_valid(raw)) {
        clean = sanitize_utf8(raw);
        t = clean;
      }
      std::string prefixed;
      if (m.add_prefix_space && !t.empty() && t[0] != ' ') {
        prefixed = " ";
        prefixed.append(t);
        t = prefixed;
      }
      words.clear();
      m.pre.split(t, words);
      for (const auto& [wo, wl] : words) {
        const std::string_view word = t.substr(wo, wl);
        if (m.ignore_merges) {
          const int32_t id = v.find(byte_level_encode(word));
          if (id >= 0) {
            out.push_back(id);
            continue;
          }
        }
        syms.clear();
        for (char c : word) syms.push_back(m.byte_symbol[static_cast<uint8_t>(c)]);
        m.merges->merge(syms);
        for (size_t i = 0; i < syms.size(); ++i) {
          const int32_t id = syms[i];
          if (id >= 0 && id < v.n_tokens()) {
            out.push_back(id);
          } else if (id >= 0) {
            // A merge produced a text that is no token: spell it by bytes.
            std::string bytes;
            byte_level_decode(m.merges->extra_text(id), &bytes);
            for (char c : bytes) {
              const int32_t b = m.byte_symbol[static_cast<uint8_t>(c)];
              if (b >= 0 && b < v.n_tokens()) out.push_back(b);
            }
          } else if (v.valid(v.unk)) {
            out.push_back(v.unk);
          }
        }
      }
    }
    prev_special = false;
    first_text = false;
  }
  if (add_special && m.add_eos && v.valid(v.eos)) out.push_back(v.eos);
  return out;
}

std::string Tokenizer::token_to_piece(int32_t id, bool special) const {
  if (!m_->vocab.valid(id)) return {};
  const TokenType t = m_->vocab.at(id).type;
  if (!special && (t == TokenType::kControl || t == TokenType::kUnknown)) return {};
  return m_->pieces[static_cast<size_t>(id)];
}

std::string Tokenizer::decode(std::span<const int32_t> ids, bool special) const {
  std::string out;
  bool first = true;
  // WordPiece word starts carry a space too (" hello").
  const bool strip = m_->kind == TokenizerKind::kSpm || m_->kind == TokenizerKind::kWordPiece ||
                     (!m_->byte_level && m_->prepend != PrependScheme::kNever);
  for (int32_t id : ids) {
    std::string p = token_to_piece(id, special);
    if (p.empty()) continue;
    // The dummy prefix SentencePiece added is not part of the text.
    if (first && strip && p[0] == ' ' && m_->vocab.at(id).type != TokenType::kControl) p.erase(0, 1);
    first = false;
    out += p;
  }
  return out;
}

const std::string& Tokenizer::token_text(int32_t id) const {
  static const std::string kEmpty;
  return m_->vocab.valid(id) ? m_->vocab.at(id).text : kEmpty;
}
int32_t Tokenizer::token_id(std::string_view text) const { return m_->vocab.find(text); }
int32_t Tokenizer::n_vocab() const { return m_->vocab.n_tokens(); }
int32_t Tokenizer::bos() const { return m_->vocab.bos; }
int32_t Tokenizer::eos() const { return m_->vocab.eos; }
int32_t Tokenizer::eot() const { return m_->vocab.eot; }
int32_t Tokenizer::unk() const { return m_->vocab.unk; }
bool Tokenizer::add_bos() const { return m_->add_bos; }
bool Tokenizer::add_eos() const { return m_->add_eos; }
bool Tokenizer::is_eog(int32_t id) const {
  const auto& e = m_->vocab.eog;
  return std::find(e.begin(), e.end(), id) != e.end();
}
bool Tokenizer::is_control(int32_t id) const { return m_->vocab.is_control(id); }
const std::string& Tokenizer::kind_name() const { return m_->name; }
const Vocab& Tokenizer::vocab() const { return m_->vocab; }

std::string TokenStreamDecoder::push(int32_t id) {
  std::string p = tok_.token_to_piece(id, special_);
  if (p.empty()) return {};
  const TokenizerModel& m = *tok_.m_;
  const bool strip = m.kind == TokenizerKind::kSpm || m.kind == TokenizerKind::kWordPiece ||
                     (!m.byte_level && m.prepend != PrependScheme::kNever);
  if (first_ && strip && p[0] == ' ' && m.vocab.at(id).type != TokenType::kControl) p.erase(0, 1);
  first_ = false;
  pending_ += p;
  // Emit every complete character; invalid bytes become U+FFFD; an
  // unfinished sequence at the end waits for the next token.
  const size_t hold = utf8_incomplete_tail(pending_);
  const std::string_view ready = std::string_view(pending_).substr(0, pending_.size() - hold);
  std::string out = utf8_is_valid(ready) ? std::string(ready) : sanitize_utf8(ready);
  pending_.erase(0, pending_.size() - hold);
  return out;
}

std::string TokenStreamDecoder::flush() {
  std::string out = sanitize_utf8(pending_);
  pending_.clear();
  return out;
}

}  // namespace hanul
