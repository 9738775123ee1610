// Tokenizer from a Hugging Face tokenizer.json (tokenizers' serialization:
// tokenizers/src/tokenizer/serialization.rs and the model, normalizer and
// pre_tokenizer structs it names), plus tokenizer_config.json beside it for
// the BOS/EOS tokens and add_bos/add_eos. Read: model.type BPE (byte-level
// as GPT-2, Llama 3, Qwen2 use it, or over characters with byte_fallback as
// Llama 2 and Mistral use it), added_tokens, the normalizers Prepend,
// Replace(' ', '▁') and NFC, the pre-tokenizers
// ByteLevel, Split(Regex|String, Isolated), Digits, Metaspace, Sequence, and
// the TemplateProcessing post-processor. Anything else is refused by name.
#include <filesystem>

#include <fmt/core.h>
#include <nlohmann/json.hpp>

#include "hanul/base/mapped_file.h"
#include "hanul/tokenizer/tokenizer_model.h"

namespace hanul {
namespace {

using nlohmann::json;

constexpr const char* kGpt2Regex =
    "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)";

std::string type_of(const json& j) {
  return j.is_object() && j.contains("type") && j["type"].is_string() ? j["type"].get<std::string>() : "";
}

std::string regex_quote(std::string_view s) {
  std::string out;
  for (char c : s) {
    if (std::string_view("\\^$.|?*+()[]{}").find(c) != std::string_view::npos) out += '\\';
    out += c;
  }
  return out;
}

struct Ctx {
  std::string path;
  TokenizerModel* m;
  bool saw_byte_level = false;
  bool saw_metaspace = false;
};

Status read_normalizer(Ctx& c, const json& n) {
  if (n.is_null()) return {};
  const std::string t = type_of(n);
  if (t == "Sequence") {
    for (const json& s : n.value("normalizers", json::array())) HANUL_TRY(read_normalizer(c, s));
    return {};
  }
  if (t == "Prepend") {
    if (n.value("prepend", "") != "\xE2\x96\x81") {
      return Error{fmt::format("tokenizer: '{}': normalizer Prepend('{}') is not supported (only '▁')",
                               c.path, n.value("prepend", ""))};
    }
    c.m->prepend = PrependScheme::kAlways;
    return {};
  }
  if (t == "Replace") {
    const json& p = n.value("pattern", json::object());
    if (p.value("String", "") == " " && n.value("content", "") == "\xE2\x96\x81") {
      c.m->escape_spaces = true;
      return {};
    }
    return Error{fmt::format("tokenizer: '{}': normalizer Replace({}) is not supported (only ' ' -> '▁')",
                             c.path, n.dump())};
  }
  if (t == "NFC") {
    c.m->nfc = true;  // Tokenizer::encode runs unicode_nfc (ICU) on each text piece
    return {};
  }
  return Error{fmt::format("tokenizer: '{}': normalizer '{}' is not supported", c.path, t)};
}

Status read_pre_tokenizer(Ctx& c, const json& p) {
  if (p.is_null()) return {};
  const std::string t = type_of(p);
  TokenizerModel& m = *c.m;
  if (t == "Sequence") {
    for (const json& s : p.value("pretokenizers", json::array())) HANUL_TRY(read_pre_tokenizer(c, s));
    return {};
  }
  if (t == "ByteLevel") {
    c.saw_byte_level = true;
    m.add_prefix_space = p.value("add_prefix_space", false);
    if (p.value("use_regex", true)) m.pre_regexes.push_back(kGpt2Regex);
    return {};
  }
  if (t == "Split") {
    if (p.value("invert", false)) {
      return Error{fmt::format("tokenizer: '{}': pre_tokenizer Split with invert=true is not supported", c.path)};
    }
    const std::string behavior = p.value("behavior", "");
    if (behavior != "Isolated") {
      return Error{fmt::format("tokenizer: '{}': pre_tokenizer Split with behavior '{}' is not supported "
                               "(only Isolated)", c.path, behavior)};
    }
    const json& pat = p.value("pattern", json::object());
    if (pat.contains("Regex")) {
      m.pre_regexes.push_back(pat["Regex"].get<std::string>());
    } else if (pat.contains("String")) {
      m.pre_regexes.push_back(regex_quote(pat["String"].get<std::string>()));
    } else {
      return Error{fmt::format("tokenizer: '{}': pre_tokenizer Split has no pattern", c.path)};
    }
    return {};
  }
  if (t == "Digits") {
    m.pre_regexes.push_back(p.value("individual_digits", false) ? "\\p{N}" : "\\p{N}+");
    return {};
  }
  if (t == "Metaspace") {
    c.saw_metaspace = true;
    if (p.value("replacement", "\xE2\x96\x81") != "\xE2\x96\x81") {
      return Error{fmt::format("tokenizer: '{}': Metaspace replacement other than '▁' is not supported", c.path)};
    }
    m.escape_spaces = true;
    std::string scheme = p.value("prepend_scheme", "");
    if (scheme.empty()) scheme = p.value("add_prefix_space", true) ? "always" : "never";
    m.prepend = scheme == "first" ? PrependScheme::kFirst
                : scheme == "never" ? PrependScheme::kNever
                                    : PrependScheme::kAlways;
    m.metaspace_split = p.value("split", true);
    return {};
  }
  return Error{fmt::format("tokenizer: '{}': pre_tokenizer '{}' is not supported", c.path, t)};
}

// TemplateProcessing "single": [{SpecialToken: {id}}, {Sequence: {id: A}}, ...].
void read_post_processor(Ctx& c, const json& p, std::string* bos, std::string* eos) {
  if (p.is_null()) return;
  const std::string t = type_of(p);
  if (t == "Sequence") {
    for (const json& s : p.value("processors", json::array())) read_post_processor(c, s, bos, eos);
    return;
  }
  if (t != "TemplateProcessing") return;
  bool seen_sequence = false;
  for (const json& item : p.value("single", json::array())) {
    if (item.contains("Sequence")) {
      seen_sequence = true;
    } else if (item.contains("SpecialToken")) {
      const std::string id = item["SpecialToken"].value("id", "");
      if (!seen_sequence) {
        c.m->add_bos = true;
        *bos = id;
      } else {
        c.m->add_eos = true;
        *eos = id;
      }
    }
  }
}

std::string token_content(const json& j) {
  if (j.is_string()) return j.get<std::string>();
  if (j.is_object() && j.contains("content") && j["content"].is_string()) return j["content"].get<std::string>();
  return {};
}

Result<TokenizerModel> parse(const std::string& path, const json& root) {
  TokenizerModel m;
  m.source = path;
  Ctx c{path, &m};
  const json& model = root.value("model", json::object());
  const std::string mt = type_of(model);
  if (mt != "BPE" && !(mt.empty() && model.contains("merges"))) {
    return Error{fmt::format("tokenizer: '{}': model type '{}' is not supported (only BPE; WordPiece and "
                             "Unigram are not)", path, mt)};
  }
  if (!model.value("continuing_subword_prefix", json()).is_null() ||
      !model.value("end_of_word_suffix", json()).is_null()) {
    return Error{fmt::format("tokenizer: '{}': BPE with continuing_subword_prefix or end_of_word_suffix "
                             "is not supported", path)};
  }
  m.kind = TokenizerKind::kBpe;
  m.name = "hf-bpe";
  m.escape_spaces = false;
  m.prepend = PrependScheme::kNever;
  m.byte_fallback = model.value("byte_fallback", false);
  m.ignore_merges = model.value("ignore_merges", false);

  // Vocab: text -> id; ids must cover 0..n-1 once added tokens are in.
  const json& vocab = model.value("vocab", json::object());
  if (!vocab.is_object()) return Error{fmt::format("tokenizer: '{}': model.vocab is not an object", path)};
  int64_t n = 0;
  for (const auto& [text, id] : vocab.items()) {
    if (!id.is_number_integer() || id.get<int64_t>() < 0 || id.get<int64_t>() > (1 << 24)) {
      return Error{fmt::format("tokenizer: '{}': vocab entry '{}' has a bad id", path, text)};
    }
    n = std::max(n, id.get<int64_t>() + 1);
  }
  const json& added = root.value("added_tokens", json::array());
  for (const json& a : added) n = std::max(n, a.value("id", int64_t{-1}) + 1);
  m.vocab.tokens.resize(static_cast<size_t>(n));
  std::vector<bool> filled(static_cast<size_t>(n), false);
  for (const auto& [text, id] : vocab.items()) {
    TokenData& t = m.vocab.tokens[static_cast<size_t>(id.get<int64_t>())];
    t.text = text;
    filled[static_cast<size_t>(id.get<int64_t>())] = true;
    if (text.size() == 6 && text.starts_with("<0x") && text[5] == '>' && m.byte_fallback) t.type = TokenType::kByte;
  }
  const std::string unk = model.value("unk_token", json()).is_string() ? model["unk_token"].get<std::string>() : "";
  for (const json& a : added) {
    const int64_t id = a.value("id", int64_t{-1});
    if (id < 0) return Error{fmt::format("tokenizer: '{}': an added token has no id", path)};
    TokenData& t = m.vocab.tokens[static_cast<size_t>(id)];
    t.text = a.value("content", "");
    t.type = a.value("special", false) ? TokenType::kControl : TokenType::kUserDefined;
    if (t.text == unk) t.type = TokenType::kUnknown;
    t.lstrip = a.value("lstrip", false);
    t.rstrip = a.value("rstrip", false);
    filled[static_cast<size_t>(id)] = true;
  }
  for (size_t i = 0; i < filled.size(); ++i) {
    if (!filled[i]) {
      m.vocab.tokens[i].type = TokenType::kUnused;
      m.vocab.tokens[i].text = fmt::format("[UNUSED_{}]", i);
    }
  }
  if (!unk.empty()) {
    for (size_t i = 0; i < m.vocab.tokens.size(); ++i) {
      if (m.vocab.tokens[i].text == unk) m.vocab.unk = static_cast<int32_t>(i);
    }
  }

  const json& merges = model.value("merges", json::array());
  m.merge_list.reserve(merges.size());
  for (size_t i = 0; i < merges.size(); ++i) {
    const json& mg = merges[i];
    if (mg.is_string()) {
      const std::string s = mg.get<std::string>();
      const size_t sp = s.find(' ', 1);
      if (sp == std::string::npos) return Error{fmt::format("tokenizer: '{}': merge {} '{}' has no space", path, i, s)};
      m.merge_list.emplace_back(s.substr(0, sp), s.substr(sp + 1));
    } else if (mg.is_array() && mg.size() == 2 && mg[0].is_string() && mg[1].is_string()) {
      m.merge_list.emplace_back(mg[0].get<std::string>(), mg[1].get<std::string>());
    } else {
      return Error{fmt::format("tokenizer: '{}': merge {} is neither \"a b\" nor [a, b]", path, i)};
    }
  }

  HANUL_TRY(read_normalizer(c, root.value("normalizer", json())));
  HANUL_TRY(read_pre_tokenizer(c, root.value("pre_tokenizer", json())));
  if (type_of(root.value("decoder", json())) == "ByteLevel") c.saw_byte_level = true;
  m.byte_level = c.saw_byte_level;
  if (m.byte_level) {
    m.name = "hf-byte-bpe";
    m.escape_spaces = false;
    m.prepend = PrependScheme::kNever;
    if (m.pre_regexes.empty()) m.pre_regexes.push_back("[\\s\\S]+");  // one word: no splitting
  } else if (!m.pre_regexes.empty()) {
    return Error{fmt::format("tokenizer: '{}': regex pre-tokenizers without ByteLevel are not supported", path)};
  }

  std::string bos, eos;
  read_post_processor(c, root.value("post_processor", json()), &bos, &eos);

  // tokenizer_config.json beside it names BOS/EOS and whether to add them.
  namespace fs = std::filesystem;
  const fs::path cfg_path = fs::path(path).parent_path() / "tokenizer_config.json";
  std::error_code ec;
  if (fs::exists(cfg_path, ec)) {
    auto text = read_text_file(cfg_path.string());
    if (text.ok()) {
      const json cfg = json::parse(*text, nullptr, false);
      if (!cfg.is_discarded() && cfg.is_object()) {
        if (cfg.contains("bos_token")) bos = token_content(cfg["bos_token"]);
        if (cfg.contains("eos_token")) eos = token_content(cfg["eos_token"]);
        if (cfg.contains("add_bos_token") && cfg["add_bos_token"].is_boolean()) m.add_bos = cfg["add_bos_token"].get<bool>();
        if (cfg.contains("add_eos_token") && cfg["add_eos_token"].is_boolean()) m.add_eos = cfg["add_eos_token"].get<bool>();
      }
    }
  }
  auto find_text = [&](const std::string& s) -> int32_t {
    if (s.empty()) return -1;
    for (size_t i = 0; i < m.vocab.tokens.size(); ++i) {
      if (m.vocab.tokens[i].text == s) return static_cast<int32_t>(i);
    }
    return -1;
  };
  m.vocab.bos = find_text(bos);
  m.vocab.eos = find_text(eos);
  if (m.vocab.eos < 0) {
    for (const char* guess : {"</s>", "<|end_of_text|>", "<|endoftext|>", "<|im_end|>"}) {
      if ((m.vocab.eos = find_text(guess)) >= 0) break;
    }
  }
  return m;
}

}  // namespace

Result<TokenizerModel> load_hf_tokenizer_json(const std::string& path) {
  HANUL_ASSIGN_OR_RETURN(std::string text, read_text_file(path));
  const json root = json::parse(text, nullptr, false);
  if (root.is_discarded() || !root.is_object()) {
    return Error{fmt::format("tokenizer: '{}' is not valid JSON", path)};
  }
  try {
    return parse(path, root);
  } catch (const json::exception& e) {
    return Error{fmt::format("tokenizer: '{}': unexpected JSON shape: {}", path, e.what())};
  }
}

}  // namespace hanul
