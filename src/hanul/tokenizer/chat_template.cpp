#include "hanul/tokenizer/chat_template.h"

#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include <fmt/core.h>
#include <nlohmann/json.hpp>

#include "hanul/formats/gguf.h"
#include "hanul/tokenizer/jinja_eval.h"
#include "hanul/tokenizer/jinja_parser.h"

namespace hanul {

struct ChatTemplate::Impl {
  std::string source;
  jinja::Body body;
};

Result<ChatTemplate> ChatTemplate::parse(const std::string& source) {
  HANUL_ASSIGN_OR_RETURN(jinja::Body body, jinja::parse_template(source));
  auto impl = std::make_shared<Impl>();
  impl->source = source;
  impl->body = std::move(body);
  ChatTemplate t;
  t.impl_ = std::move(impl);
  return t;
}

const std::string& ChatTemplate::source() const {
  static const std::string kEmpty;
  return impl_ ? impl_->source : kEmpty;
}

Result<std::string> ChatTemplate::render(std::span<const ChatMessage> messages,
                                         const ChatTemplateInputs& inputs) const {
  if (!impl_) return Error{"chat template: render() on a template that was never parsed"};
  jinja::List list;
  for (const ChatMessage& m : messages) {
    list.push_back(jinja::Value::make_dict(
        {{"role", jinja::Value::string(m.role)}, {"content", jinja::Value::string(m.content)}}));
  }
  // What transformers' apply_chat_template passes (tokenization_utils_base.py, 4.45):
  // messages, tools=None, documents=None, add_generation_prompt, and the special
  // tokens map (bos_token, eos_token, ...), where a missing token is left undefined.
  std::map<std::string, jinja::Value> globals;
  globals["messages"] = jinja::Value::make_list(std::move(list));
  globals["tools"] = jinja::Value::none();
  globals["documents"] = jinja::Value::none();
  globals["add_generation_prompt"] = jinja::Value::boolean(inputs.add_generation_prompt);
  if (!inputs.bos_token.empty()) globals["bos_token"] = jinja::Value::string(inputs.bos_token);
  if (!inputs.eos_token.empty()) globals["eos_token"] = jinja::Value::string(inputs.eos_token);
  return jinja::render(impl_->body, globals);
}

namespace {

Result<std::string> read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Error{fmt::format("chat template: cannot open '{}'", path)};
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// tokenizer_config.json: "chat_template" is a string, or a list of
// {"name", "template"} where "default" is the chat template (transformers
// tokenization_utils_base.py, from_pretrained).
Result<std::optional<std::string>> template_from_config(const std::string& path) {
  HANUL_ASSIGN_OR_RETURN(std::string text, read_file(path));
  nlohmann::json j = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return Error{fmt::format("chat template: '{}' is not valid JSON", path)};
  if (!j.is_object() || !j.contains("chat_template") || j["chat_template"].is_null()) {
    return std::optional<std::string>{};
  }
  const nlohmann::json& t = j["chat_template"];
  if (t.is_string()) return std::optional<std::string>{t.get<std::string>()};
  if (t.is_array()) {
    for (const auto& entry : t) {
      if (entry.is_object() && entry.value("name", "") == "default" && entry.contains("template") &&
          entry["template"].is_string()) {
        return std::optional<std::string>{entry["template"].get<std::string>()};
      }
    }
    return Error{fmt::format("chat template: '{}' lists chat templates but none is named \"default\"", path)};
  }
  return Error{fmt::format("chat template: \"chat_template\" in '{}' is neither a string nor a list", path)};
}

}  // namespace

Result<std::optional<std::string>> find_chat_template(const std::string& model_path) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (fs::is_directory(model_path, ec)) {
    // A folder without tokenizer_config.json may hold a GGUF (llama.cpp style).
    const fs::path config = fs::path(model_path) / "tokenizer_config.json";
    if (fs::exists(config, ec)) return template_from_config(config.string());
    return std::optional<std::string>{};
  }
  if (!fs::exists(model_path, ec)) return Error{fmt::format("chat template: '{}' does not exist", model_path)};
  const std::string name = fs::path(model_path).filename().string();
  if (name.ends_with(".json") && name != "tokenizer.json") return template_from_config(model_path);
  if (name.ends_with(".gguf")) {
    HANUL_ASSIGN_OR_RETURN(GgufFile gguf, GgufFile::open(model_path));
    return gguf.get_string("tokenizer.chat_template");
  }
  // A tokenizer.json, tokenizer.model or safetensors file: look beside it.
  const fs::path config = fs::path(model_path).parent_path() / "tokenizer_config.json";
  if (fs::exists(config, ec)) return template_from_config(config.string());
  return std::optional<std::string>{};
}

const std::string& fallback_chat_template() {
  // ChatML, the template llama.cpp falls back to (and Qwen2's without its default system message).
  static const std::string kChatMl =
      "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + "
      "'<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";
  return kChatMl;
}

}  // namespace hanul
