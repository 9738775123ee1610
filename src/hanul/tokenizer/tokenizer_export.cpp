#include "hanul/tokenizer/tokenizer_export.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <unordered_map>

#include <fmt/core.h>
#include <nlohmann/json.hpp>

#include "hanul/base/mapped_file.h"
#include "hanul/base/utf8.h"
#include "hanul/formats/gguf.h"

namespace hanul {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

constexpr std::string_view kSpace = "\xE2\x96\x81";  // ▁ U+2581

// tokenizer_config.json "chat_template": a string, or (transformers >= 4.34)
// a list of {"name", "template"} where "default" is the main one;
// chat_template.jinja beside it in newer folders (transformers >= 4.47).
void read_folder_templates(const fs::path& dir, TokenizerExport& t) {
  std::error_code ec;
  if (auto text = read_text_file((dir / "tokenizer_config.json").string()); text.ok()) {
    const json cfg = json::parse(*text, nullptr, false);
    if (cfg.is_object() && cfg.contains("chat_template")) {
      const json& ct = cfg["chat_template"];
      if (ct.is_string()) {
        t.chat_template = ct.get<std::string>();
      } else if (ct.is_array()) {
        for (const json& e : ct) {
          if (!e.is_object() || !e.value("name", json()).is_string() || !e.value("template", json()).is_string())
            continue;
          const std::string name = e["name"].get<std::string>();
          if (name == "default") {
            t.chat_template = e["template"].get<std::string>();
          } else {
            t.named_templates.emplace_back(name, e["template"].get<std::string>());
          }
        }
      }
    }
  }
  if (t.chat_template.empty() && fs::exists(dir / "chat_template.jinja", ec)) {
    if (auto text = read_text_file((dir / "chat_template.jinja").string()); text.ok()) t.chat_template = *text;
  }
}

// Case-insensitive contraction group of HF tokenizer.json regexes, in the
// spelling llama.cpp rewrote it to (llama-vocab.cpp: Oniguruma's (?i:...)
// has no std::regex twin).
std::string llama_cpp_spelling(std::string re) {
  static const std::string kHf = "(?i:'s|'t|'re|'ve|'m|'ll|'d)";
  static const std::string kCpp = "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])";
  for (size_t p = re.find(kHf); p != std::string::npos; p = re.find(kHf, p + kCpp.size()))
    re.replace(p, kHf.size(), kCpp);
  // HF's GPT-2 regex ends in "|\s+"; llama.cpp's gpt-2 list leaves it out,
  // which splits the same: whitespace it would match is a gap between
  // matches, and gaps are pieces of their own.
  static const std::string kTail = "|\\s+(?!\\S)|\\s+";
  static const std::string kGpt2Head = "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+";
  if (re == kGpt2Head + kTail) re.resize(re.size() - 4);
  return re;
}

bool is_spm_like(const TokenizerModel& m) { return m.kind == TokenizerKind::kSpm || !m.byte_level; }

// WordPiece (BERT) is read but not written yet: refuse rather than write it
// out as if it were a SentencePiece vocabulary.
Status check_exportable(const TokenizerModel& m) {
  if (m.kind == TokenizerKind::kWordPiece)
    return Error{fmt::format("tokenizer export: '{}' is a WordPiece (BERT) tokenizer, which hanul cannot write yet",
                             m.source)};
  return Status::Ok();
}

bool is_byte_token(const std::string& s) {
  return s.size() == 6 && s.starts_with("<0x") && s[5] == '>' && std::isxdigit(static_cast<uint8_t>(s[3])) &&
         std::isxdigit(static_cast<uint8_t>(s[4]));
}

// Merges that make HF BPE (lowest rank first) merge as SentencePiece BPE
// does (highest piece score first): every split of a normal piece into two
// pieces, ranked by the piece's score, ties by the ids of the two sides.
// This is transformers' SentencePieceExtractor (convert_slow_tokenizer.py),
// the way Llama 2's own tokenizer.json was made.
std::vector<std::pair<std::string, std::string>> merges_from_scores(const Vocab& v) {
  std::unordered_map<std::string_view, int32_t> ids;
  for (int32_t i = 0; i < v.n_tokens(); ++i) {
    if (v.at(i).type == TokenType::kNormal) ids.emplace(v.at(i).text, i);
  }
  struct M {
    float score;
    int32_t l, r;
  };
  std::vector<M> all;
  for (int32_t i = 0; i < v.n_tokens(); ++i) {
    const TokenData& t = v.at(i);
    if (t.type != TokenType::kNormal) continue;
    const std::string_view s = t.text;
    for (size_t cut = utf8_len(static_cast<uint8_t>(s[0])); cut < s.size();
         cut += utf8_len(static_cast<uint8_t>(s[cut]))) {
      auto l = ids.find(s.substr(0, cut)), r = ids.find(s.substr(cut));
      if (l != ids.end() && r != ids.end()) all.push_back({t.score, l->second, r->second});
    }
  }
  std::stable_sort(all.begin(), all.end(), [](const M& a, const M& b) {
    if (a.score != b.score) return a.score > b.score;
    return a.l != b.l ? a.l < b.l : a.r < b.r;
  });
  std::vector<std::pair<std::string, std::string>> out;
  out.reserve(all.size());
  for (const M& m : all) out.emplace_back(v.at(m.l).text, v.at(m.r).text);
  return out;
}

// SentencePiece-style scores for an HF BPE over characters: a piece scores
// minus the rank of the first merge that makes it, so that llama.cpp's SPM
// tokenizer (highest score first) merges in HF's rank order. llama.cpp's
// LlamaHfVocab writes -1000 for every piece (a placeholder, per its own
// comment), which leaves the merge order to chance; pieces no merge makes
// (characters, bytes, specials) keep 0, as SentencePiece gives its specials.
std::vector<float> scores_from_merges(const TokenizerModel& m) {
  std::vector<float> scores(m.vocab.tokens.size(), 0.0f);
  std::unordered_map<std::string, int32_t> ids;
  for (int32_t i = 0; i < m.vocab.n_tokens(); ++i) ids.emplace(m.vocab.at(i).text, i);
  std::vector<bool> set(scores.size(), false);
  for (size_t r = 0; r < m.merge_list.size(); ++r) {
    auto it = ids.find(m.merge_list[r].first + m.merge_list[r].second);
    if (it == ids.end() || set[static_cast<size_t>(it->second)]) continue;
    set[static_cast<size_t>(it->second)] = true;
    scores[static_cast<size_t>(it->second)] = -static_cast<float>(r + 1);
  }
  return scores;
}

json added_token(int32_t id, const TokenData& t) {
  const bool special = t.type == TokenType::kControl || t.type == TokenType::kUnknown;
  // normalized=false: matched on the raw text, as hanul's Vocab::partition
  // does for every added token.
  return json{{"id", id},           {"content", t.text}, {"single_word", false}, {"lstrip", t.lstrip},
              {"rstrip", t.rstrip}, {"normalized", false}, {"special", special}};
}

json template_processing(const TokenizerModel& m) {
  const Vocab& v = m.vocab;
  const bool bos = m.add_bos && v.valid(v.bos), eos = m.add_eos && v.valid(v.eos);
  if (!bos && !eos) return json();
  json single = json::array(), pair = json::array(), specials = json::object();
  auto special = [&](int32_t id, int type_id) {
    return json{{"SpecialToken", {{"id", v.at(id).text}, {"type_id", type_id}}}};
  };
  auto seq = [](const char* id, int type_id) { return json{{"Sequence", {{"id", id}, {"type_id", type_id}}}}; };
  for (int k = 0; k < 2; ++k) {
    json& out = k == 0 ? single : pair;
    if (bos) out.push_back(special(v.bos, 0));
    out.push_back(seq("A", 0));
    if (eos) out.push_back(special(v.eos, 0));
    if (k == 1) {
      if (bos) out.push_back(special(v.bos, 1));
      out.push_back(seq("B", 1));
      if (eos) out.push_back(special(v.eos, 1));
    }
  }
  for (int32_t id : {bos ? v.bos : -1, eos ? v.eos : -1}) {
    if (id < 0) continue;
    specials[v.at(id).text] = {{"id", v.at(id).text}, {"ids", {id}}, {"tokens", {v.at(id).text}}};
  }
  return {{"type", "TemplateProcessing"}, {"single", single}, {"pair", pair}, {"special_tokens", specials}};
}

}  // namespace

Result<std::optional<TokenizerExport>> load_tokenizer_for_export(const std::string& path) {
  std::error_code ec;
  TokenizerExport t;
  if (fs::is_directory(path, ec)) {
    std::string file;
    for (const char* name : {"tokenizer.json", "tokenizer.model"}) {
      if (fs::exists(fs::path(path) / name, ec)) {
        file = (fs::path(path) / name).string();
        break;
      }
    }
    if (file.empty()) return std::optional<TokenizerExport>();
    HANUL_ASSIGN_OR_RETURN(t.model, load_tokenizer_file(file));
    read_folder_templates(path, t);
    return std::optional<TokenizerExport>(std::move(t));
  }
  std::ifstream in(path, std::ios::binary);
  char magic[4] = {};
  if (!in || !in.read(magic, 4)) return Error{fmt::format("tokenizer: cannot read '{}'", path)};
  in.close();
  if (std::string_view(magic, 4) == "GGUF") {
    HANUL_ASSIGN_OR_RETURN(GgufFile f, GgufFile::open(path));
    if (!f.find("tokenizer.ggml.tokens")) return std::optional<TokenizerExport>();
    HANUL_ASSIGN_OR_RETURN(t.model, load_gguf_tokenizer(path));
    t.chat_template = f.get_string("tokenizer.chat_template").value_or("");
    const std::string prefix = "tokenizer.chat_template.";
    for (const auto& [key, value] : f.metadata()) {
      if (key.rfind(prefix, 0) != 0) continue;
      if (auto s = f.get_string(key)) t.named_templates.emplace_back(key.substr(prefix.size()), *s);
    }
    return std::optional<TokenizerExport>(std::move(t));
  }
  HANUL_ASSIGN_OR_RETURN(t.model, load_tokenizer_file(path));
  read_folder_templates(fs::path(path).parent_path(), t);
  return std::optional<TokenizerExport>(std::move(t));
}

std::string pre_tokenizer_family(const TokenizerModel& m) {
  if (!m.pre_name.empty()) return m.pre_name;
  std::vector<std::string> mine;
  for (const std::string& r : m.pre_regexes) mine.push_back(llama_cpp_spelling(r));
  // One name per distinct regex list of llama.cpp's llm_tokenizer_bpe, the
  // most common name first (gpt-2 before mpt, which splits the same).
  for (const char* name : {"gpt-2", "llama-bpe", "qwen2", "starcoder", "deepseek-coder", "deepseek-llm",
                           "deepseek-v3", "falcon", "bloom", "viking", "tekken", "chameleon", "default"}) {
    if (PreTokenizer::family_regexes(name) == mine) return name;
  }
  return {};
}

Status write_gguf_tokenizer(const TokenizerExport& t, GgufWriter& w, int64_t n_vocab) {
  const TokenizerModel& m = t.model;
  HANUL_TRY(check_exportable(m));
  const Vocab& v = m.vocab;
  const int64_t n_tok = v.n_tokens();
  const int64_t n = std::max(n_tok, n_vocab);
  std::vector<std::string> tokens;
  std::vector<int64_t> types;
  tokens.reserve(static_cast<size_t>(n));
  types.reserve(static_cast<size_t>(n));
  for (const TokenData& d : v.tokens) {
    tokens.push_back(d.text);
    types.push_back(static_cast<int64_t>(d.type == TokenType::kUndefined ? TokenType::kNormal : d.type));
  }
  // convert_hf_to_gguf.py pads to the model's vocab_size with "[PAD<id>]"
  // tokens of type UNUSED (score -1000 where scores are written).
  for (int64_t i = n_tok; i < n; ++i) {
    tokens.push_back(fmt::format("[PAD{}]", i));
    types.push_back(static_cast<int64_t>(TokenType::kUnused));
  }

  if (is_spm_like(m)) {
    if (!m.escape_spaces) {
      return Error{fmt::format("tokenizer export: '{}' is a BPE over characters that keeps spaces as they are; "
                               "GGUF's 'llama' model always spells them '▁'", m.source)};
    }
    std::vector<double> scores;
    scores.reserve(static_cast<size_t>(n));
    if (m.kind == TokenizerKind::kSpm) {
      for (const TokenData& d : v.tokens) scores.push_back(d.score);
    } else {
      for (float s : scores_from_merges(m)) scores.push_back(s);
    }
    scores.resize(static_cast<size_t>(n), -1000.0);
    // Byte pieces of an HF byte-fallback vocab are BYTE in GGUF (LlamaHfVocab).
    for (int64_t i = 0; i < n_tok; ++i) {
      if (types[static_cast<size_t>(i)] == static_cast<int64_t>(TokenType::kNormal) &&
          m.byte_fallback && is_byte_token(tokens[static_cast<size_t>(i)]))
        types[static_cast<size_t>(i)] = static_cast<int64_t>(TokenType::kByte);
    }
    w.set_string("tokenizer.ggml.model", "llama");
    w.set_string("tokenizer.ggml.pre", "default");
    w.set_string_array("tokenizer.ggml.tokens", std::move(tokens));
    w.set_f32_array("tokenizer.ggml.scores", std::move(scores));
    w.set_i32_array("tokenizer.ggml.token_type", std::move(types));
    w.set_bool("tokenizer.ggml.add_space_prefix", m.prepend != PrependScheme::kNever);
  } else {
    const std::string pre = pre_tokenizer_family(m);
    if (pre.empty()) {
      std::string list;
      for (const std::string& r : m.pre_regexes) list += fmt::format("{}'{}'", list.empty() ? "" : ", ", r);
      return Error{fmt::format("tokenizer export: '{}' splits words with regexes [{}], which match no "
                               "llama.cpp pre-tokenizer (tokenizer.ggml.pre); llama.cpp could not run it",
                               m.source, list)};
    }
    std::vector<std::string> merges;
    merges.reserve(m.merge_list.size());
    for (const auto& [a, b] : m.merge_list) merges.push_back(a + " " + b);
    w.set_string("tokenizer.ggml.model", "gpt2");
    w.set_string("tokenizer.ggml.pre", pre);
    w.set_string_array("tokenizer.ggml.tokens", std::move(tokens));
    w.set_i32_array("tokenizer.ggml.token_type", std::move(types));
    w.set_string_array("tokenizer.ggml.merges", std::move(merges));
  }
  auto id = [&](const char* key, int32_t value) {
    if (v.valid(value)) w.set_u32(key, static_cast<uint32_t>(value));
  };
  id("tokenizer.ggml.bos_token_id", v.bos);
  id("tokenizer.ggml.eos_token_id", v.eos);
  id("tokenizer.ggml.unknown_token_id", v.unk);
  id("tokenizer.ggml.padding_token_id", v.pad);
  id("tokenizer.ggml.eot_token_id", v.eot);
  w.set_bool("tokenizer.ggml.add_bos_token", m.add_bos);
  w.set_bool("tokenizer.ggml.add_eos_token", m.add_eos);
  if (!t.chat_template.empty()) w.set_string("tokenizer.chat_template", t.chat_template);
  for (const auto& [name, tmpl] : t.named_templates) w.set_string("tokenizer.chat_template." + name, tmpl);
  return {};
}

Status write_hf_tokenizer(const TokenizerExport& t, const std::string& dir) {
  const TokenizerModel& m = t.model;
  HANUL_TRY(check_exportable(m));
  const Vocab& v = m.vocab;
  json vocab = json::object();
  json added = json::array();
  for (int32_t i = 0; i < v.n_tokens(); ++i) {
    const TokenData& d = v.at(i);
    if (!utf8_is_valid(d.text)) {
      return Error{fmt::format("tokenizer export: token {} of '{}' is not valid UTF-8; tokenizer.json cannot "
                               "hold it", i, m.source)};
    }
    if (vocab.contains(d.text)) {
      return Error{fmt::format("tokenizer export: '{}' has the text '{}' twice (ids {} and {}); tokenizer.json "
                               "maps each text to one id", m.source, d.text, vocab[d.text].get<int32_t>(), i)};
    }
    vocab[d.text] = i;
    if (d.type == TokenType::kControl || d.type == TokenType::kUnknown || d.type == TokenType::kUserDefined)
      added.push_back(added_token(i, d));
  }

  json model = {{"type", "BPE"},
                {"dropout", nullptr},
                {"unk_token", v.valid(v.unk) ? json(v.at(v.unk).text) : json()},
                {"continuing_subword_prefix", nullptr},
                {"end_of_word_suffix", nullptr},
                {"vocab", std::move(vocab)}};
  std::vector<std::pair<std::string, std::string>> merges =
      m.kind == TokenizerKind::kSpm ? merges_from_scores(v) : m.merge_list;
  json jm = json::array();
  for (auto& [a, b] : merges) jm.push_back(json::array({std::move(a), std::move(b)}));
  model["merges"] = std::move(jm);

  json root = {{"version", "1.0"}, {"truncation", nullptr}, {"padding", nullptr}, {"added_tokens", added}};
  if (is_spm_like(m)) {
    // Llama 2's tokenizer.json: Prepend('▁') + Replace(' ', '▁'), BPE with
    // byte fallback, decoder undoing both. Metaspace where the prefix goes on
    // the first piece only or words are cut at each '▁'.
    model["fuse_unk"] = true;
    model["byte_fallback"] = m.byte_fallback;
    model["ignore_merges"] = false;
    const bool metaspace = m.metaspace_split || m.prepend == PrependScheme::kFirst;
    if (!m.escape_spaces) {
      root["normalizer"] = nullptr;
      root["pre_tokenizer"] = nullptr;
    } else if (metaspace) {
      root["normalizer"] = nullptr;
      root["pre_tokenizer"] = {{"type", "Metaspace"},
                               {"replacement", kSpace},
                               {"prepend_scheme", m.prepend == PrependScheme::kFirst    ? "first"
                                                  : m.prepend == PrependScheme::kAlways ? "always"
                                                                                        : "never"},
                               {"split", m.metaspace_split}};
    } else {
      json norms = json::array();
      if (m.prepend == PrependScheme::kAlways) norms.push_back({{"type", "Prepend"}, {"prepend", kSpace}});
      norms.push_back({{"type", "Replace"}, {"pattern", {{"String", " "}}}, {"content", kSpace}});
      root["normalizer"] = {{"type", "Sequence"}, {"normalizers", norms}};
      root["pre_tokenizer"] = nullptr;
    }
    json decoders = json::array();
    if (m.escape_spaces)
      decoders.push_back({{"type", "Replace"}, {"pattern", {{"String", kSpace}}}, {"content", " "}});
    decoders.push_back({{"type", "ByteFallback"}});
    decoders.push_back({{"type", "Fuse"}});
    if (m.prepend != PrependScheme::kNever)
      decoders.push_back({{"type", "Strip"}, {"content", " "}, {"start", 1}, {"stop", 0}});
    root["decoder"] = {{"type", "Sequence"}, {"decoders", decoders}};
  } else {
    // Byte-level BPE: one Split per regex (each applied to the pieces the
    // previous one left, as hanul's PreTokenizer and llama.cpp split), then
    // ByteLevel without its own regex.
    model["fuse_unk"] = false;
    model["byte_fallback"] = false;
    model["ignore_merges"] = m.ignore_merges;
    json pre = json::array();
    for (const std::string& r : m.pre_regexes) {
      pre.push_back({{"type", "Split"}, {"pattern", {{"Regex", r}}}, {"behavior", "Isolated"}, {"invert", false}});
    }
    pre.push_back({{"type", "ByteLevel"}, {"add_prefix_space", m.add_prefix_space}, {"trim_offsets", true},
                   {"use_regex", false}});
    root["normalizer"] = m.nfc ? json{{"type", "NFC"}} : json();
    root["pre_tokenizer"] = {{"type", "Sequence"}, {"pretokenizers", pre}};
    root["decoder"] = {{"type", "ByteLevel"}, {"add_prefix_space", true}, {"trim_offsets", true}, {"use_regex", true}};
  }
  root["post_processor"] = template_processing(m);
  root["model"] = std::move(model);

  json cfg = {{"tokenizer_class", "PreTrainedTokenizerFast"},
              {"add_bos_token", m.add_bos},
              {"add_eos_token", m.add_eos},
              {"clean_up_tokenization_spaces", false}};
  auto name = [&](const char* key, int32_t id) {
    if (v.valid(id)) cfg[key] = v.at(id).text;
  };
  name("bos_token", v.bos);
  name("eos_token", v.eos);
  name("unk_token", v.unk);
  name("pad_token", v.pad);
  if (!t.named_templates.empty()) {
    json list = json::array();
    if (!t.chat_template.empty()) list.push_back({{"name", "default"}, {"template", t.chat_template}});
    for (const auto& [n, tmpl] : t.named_templates) list.push_back({{"name", n}, {"template", tmpl}});
    cfg["chat_template"] = list;
  } else if (!t.chat_template.empty()) {
    cfg["chat_template"] = t.chat_template;
  }

  std::string tok_text, cfg_text;
  try {
    tok_text = root.dump(1);
    cfg_text = cfg.dump(2);
  } catch (const json::exception& e) {
    return Error{fmt::format("tokenizer export: '{}' cannot be written as JSON: {}", m.source, e.what())};
  }
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return Error{fmt::format("tokenizer export: cannot create folder '{}': {}", dir, ec.message())};
  HANUL_TRY(write_file_atomic((fs::path(dir) / "tokenizer.json").string(), tok_text));
  return write_file_atomic((fs::path(dir) / "tokenizer_config.json").string(), cfg_text);
}

}  // namespace hanul
