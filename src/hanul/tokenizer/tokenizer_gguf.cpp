// Tokenizer from GGUF metadata: the tokenizer.ggml.* keys of llama.cpp's
// GGUF (docs/gguf.md "Tokenizer"; llama-vocab.cpp llama_vocab::impl::load).
#include <fmt/core.h>

#include "hanul/formats/gguf.h"
#include "hanul/tokenizer/tokenizer_model.h"

namespace hanul {

Result<TokenizerModel> load_gguf_tokenizer(const std::string& path) {
  HANUL_ASSIGN_OR_RETURN(GgufFile f, GgufFile::open(path));
  TokenizerModel m;
  m.source = path;
  const std::string model = f.get_string("tokenizer.ggml.model").value_or("");
  const std::vector<std::string>* tokens = f.get_string_array("tokenizer.ggml.tokens");
  if (!tokens) {
    return Error{fmt::format("tokenizer: '{}' has no tokenizer.ggml.tokens string array", path)};
  }
  const size_t n = tokens->size();
  const auto scores = f.get_float_array("tokenizer.ggml.scores");
  const auto types = f.get_int_array("tokenizer.ggml.token_type");
  if (scores && scores->size() != n) {
    return Error{fmt::format("tokenizer: '{}' has {} tokens but {} scores", path, n, scores->size())};
  }
  if (types && types->size() != n) {
    return Error{fmt::format("tokenizer: '{}' has {} tokens but {} token types", path, n, types->size())};
  }
  m.vocab.tokens.resize(n);
  for (size_t i = 0; i < n; ++i) {
    TokenData& t = m.vocab.tokens[i];
    t.text = (*tokens)[i];
    t.score = scores ? static_cast<float>((*scores)[i]) : 0.0f;
    const int64_t ty = types ? (*types)[i] : 1;
    t.type = ty >= 0 && ty <= 6 ? static_cast<TokenType>(ty) : TokenType::kUndefined;
  }
  auto id_key = [&](const char* key) -> int32_t {
    const auto v = f.get_int(key);
    return v && *v >= 0 && *v < static_cast<int64_t>(n) ? static_cast<int32_t>(*v) : -1;
  };
  m.vocab.bos = id_key("tokenizer.ggml.bos_token_id");
  m.vocab.eos = id_key("tokenizer.ggml.eos_token_id");
  m.vocab.unk = id_key("tokenizer.ggml.unknown_token_id");
  m.vocab.pad = id_key("tokenizer.ggml.padding_token_id");
  m.vocab.eot = id_key("tokenizer.ggml.eot_token_id");

  if (model == "llama") {
    // llama.cpp defaults for SPM: BOS yes, EOS no, dummy prefix yes.
    m.kind = TokenizerKind::kSpm;
    m.name = "llama";
    m.add_bos = true;
    m.add_eos = false;
    m.prepend = f.get_bool("tokenizer.ggml.add_space_prefix").value_or(true) ? PrependScheme::kAlways
                                                                              : PrependScheme::kNever;
  } else if (model == "gpt2") {
    m.kind = TokenizerKind::kBpe;
    m.name = "gpt2";
    m.byte_level = true;
    m.escape_spaces = false;
    m.prepend = PrependScheme::kNever;
    m.pre_name = f.get_string("tokenizer.ggml.pre").value_or("default");
    m.pre_regexes = PreTokenizer::family_regexes(m.pre_name);
    if (m.pre_regexes.empty()) {
      return Error{fmt::format("tokenizer: '{}' names pre-tokenizer '{}' (tokenizer.ggml.pre), which "
                               "hanul does not know",
                               path, m.pre_name)};
    }
    // Families whose HF tokenizer.json sets ignore_merges (llama.cpp).
    m.ignore_merges = m.pre_name == "llama3" || m.pre_name == "llama-v3" ||
                      m.pre_name == "llama-bpe" || m.pre_name == "falcon3" || m.pre_name == "tekken";
    m.add_bos = m.ignore_merges || m.pre_name == "chameleon";
    const std::vector<std::string>* merges = f.get_string_array("tokenizer.ggml.merges");
    if (!merges) return Error{fmt::format("tokenizer: '{}' is gpt2 BPE but has no tokenizer.ggml.merges", path)};
    m.merge_list.reserve(merges->size());
    for (size_t i = 0; i < merges->size(); ++i) {
      const std::string& s = (*merges)[i];
      // Split at the first space after the first byte: a side may itself be
      // a lone space in non-byte-level vocabs (llama.cpp does the same).
      const size_t sp = s.find(' ', 1);
      if (sp == std::string::npos) {
        return Error{fmt::format("tokenizer: '{}' merge {} ('{}') has no space between its two sides",
                                 path, i, s)};
      }
      m.merge_list.emplace_back(s.substr(0, sp), s.substr(sp + 1));
    }
  } else if (model == "bert") {
    // WordPiece. llama.cpp's converter spells word starts "▁the" and drops
    // the "##" of continuation pieces; BERT adds [CLS] ... [SEP].
    m.kind = TokenizerKind::kWordPiece;
    m.name = "bert";
    m.wordpiece_opts.word_prefix = "\xE2\x96\x81";
    m.wordpiece_opts.continuation.clear();
    m.wordpiece_opts.lowercase = true;  // llama.cpp's WPM always lowercases and strips accents
    m.escape_spaces = false;
    m.prepend = PrependScheme::kNever;
    m.byte_fallback = false;
    m.add_bos = true;
    m.add_eos = true;
    // [CLS] and [SEP] play BOS and EOS (llama.cpp reads them the same way).
    if (const int32_t cls = id_key("tokenizer.ggml.cls_token_id"); cls >= 0) m.vocab.bos = cls;
    if (const int32_t sep = id_key("tokenizer.ggml.seperator_token_id"); sep >= 0) m.vocab.eos = sep;
  } else {
    return Error{fmt::format(
        "tokenizer: '{}' has tokenizer.ggml.model '{}'; hanul reads 'llama' (SentencePiece BPE), "
        "'gpt2' (byte-level BPE) and 'bert' (WordPiece) only (Unigram 't5' and 'rwkv' are not supported)",
        path, model)};
  }
  if (auto v = f.get_bool("tokenizer.ggml.add_bos_token")) m.add_bos = *v;
  if (auto v = f.get_bool("tokenizer.ggml.add_eos_token")) m.add_eos = *v;
  return m;
}

}  // namespace hanul
