#include "tools/hanul/chat_prompt.h"

#include <fmt/core.h>

namespace hanul::cli {

Result<ChatPrompt> ChatPrompt::load(const std::string& model_path, const Tokenizer& tok) {
  HANUL_ASSIGN_OR_RETURN(std::optional<std::string> source, find_chat_template(model_path));
  const bool fallback = !source.has_value();
  auto parsed = ChatTemplate::parse(fallback ? fallback_chat_template() : *source);
  if (!parsed.ok()) return Error{fmt::format("the chat template of {}: {}", model_path, parsed.message())};
  ChatPrompt p(std::move(parsed).value(), tok);
  p.fallback_ = fallback;
  if (fallback) {
    for (const char* marker : {"<|im_end|>", "<|im_start|>"})
      if (tok.token_id(marker) < 0) p.stops_.push_back(marker);
  }
  return p;
}

Result<std::vector<int32_t>> ChatPrompt::encode(std::span<const ChatMessage> messages,
                                                bool add_generation_prompt) const {
  ChatTemplateInputs in;
  const int32_t bos = tok_.bos(), eos = tok_.eos();
  if (bos >= 0 && bos < tok_.n_vocab()) in.bos_token = tok_.token_text(bos);
  if (eos >= 0 && eos < tok_.n_vocab()) in.eos_token = tok_.token_text(eos);
  in.add_generation_prompt = add_generation_prompt;
  auto text = template_.render(messages, in);
  if (!text.ok()) return Error{"chat template: " + text.message()};
  std::vector<int32_t> ids = tok_.encode(*text, /*add_special=*/false, /*parse_special=*/true);
  if (tok_.add_bos() && bos >= 0 && (ids.empty() || ids.front() != bos)) ids.insert(ids.begin(), bos);
  return ids;
}

}  // namespace hanul::cli
