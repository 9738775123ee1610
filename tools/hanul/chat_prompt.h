// A conversation -> prompt ids with the model's own chat template (or the ChatML fallback),
// shared by `hanul run --chat` and `hanul chat`.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "hanul/base/result.h"
#include "hanul/tokenizer/chat_template.h"
#include "hanul/tokenizer/tokenizer.h"

namespace hanul::cli {

class ChatPrompt {
 public:
  // The template shipped with the model at model_path, else fallback_chat_template().
  static Result<ChatPrompt> load(const std::string& model_path, const Tokenizer& tok);

  // The rendered template, tokenized with special tokens parsed. BOS is prepended when the
  // tokenizer adds one and the template did not write it (as llama.cpp does; transformers
  // leaves BOS to the template), so it is never doubled.
  Result<std::vector<int32_t>> encode(std::span<const ChatMessage> messages,
                                      bool add_generation_prompt = true) const;

  bool is_fallback() const { return fallback_; }
  // Stop strings the template needs beyond the EOG ids: with the ChatML fallback on a model
  // whose vocabulary lacks <|im_end|>, the turn markers come out as plain text.
  const std::vector<std::string>& stops() const { return stops_; }

 private:
  ChatPrompt(ChatTemplate t, Tokenizer tok) : template_(std::move(t)), tok_(std::move(tok)) {}
  ChatTemplate template_;
  Tokenizer tok_;
  bool fallback_ = false;
  std::vector<std::string> stops_;
};

}  // namespace hanul::cli
