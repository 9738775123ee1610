// Chat templates: the Jinja templates that models ship (chat_template in
// tokenizer_config.json, tokenizer.chat_template in GGUF) run by a Jinja
// subset, so a conversation becomes exactly the prompt transformers'
// apply_chat_template would build. An unsupported construct is an error that
// names it, never a wrong prompt.
#pragma once

#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "hanul/base/result.h"

namespace hanul {

struct ChatMessage {
  std::string role;     // "system", "user", "assistant"
  std::string content;
};

struct ChatTemplateInputs {
  std::string bos_token;
  std::string eos_token;
  bool add_generation_prompt = true;
};

class ChatTemplate {
 public:
  // Parses the template source; errors name the line and the construct.
  static Result<ChatTemplate> parse(const std::string& source);
  Result<std::string> render(std::span<const ChatMessage> messages, const ChatTemplateInputs& inputs) const;
  const std::string& source() const;

 private:
  struct Impl;
  std::shared_ptr<const Impl> impl_;
};

// The template that ships with a model: a GGUF file's tokenizer.chat_template,
// or a folder's tokenizer_config.json "chat_template" (a string, or the
// "default" entry of a list). nullopt when the model has none.
Result<std::optional<std::string>> find_chat_template(const std::string& model_path);

// A plain template for models that ship none (ChatML, as llama.cpp falls back to).
const std::string& fallback_chat_template();

}  // namespace hanul
