// The generation loop shared by `hanul run`, `hanul chat` and the server: one sequence of a
// KvCache, fed a prompt, then sampled token by token through
//
//   Llama::forward -> grammar mask -> Sampler -> end-of-generation check
//     -> TokenStreamDecoder (whole UTF-8 characters) -> StopMatcher (stop strings held back)
//     -> on_token(id, text)
//
// The generator remembers which tokens its cache slot holds, so a prompt that extends the
// previous one (the next turn of a chat) only evaluates the new tokens (prefix reuse).
//
//   Generator gen(llama, cache, &tokenizer);
//   Sampler sampler({.temperature = 0.8f, .seed = 42});
//   auto r = gen.generate(prompt_ids, sampler, {.n_predict = 128, .stops = {"\nUser:"}},
//                         [](int32_t id, std::string_view text) { std::cout << text; return true; });
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "hanul/base/result.h"
#include "hanul/generate/grammar.h"
#include "hanul/generate/sampler.h"
#include "hanul/model/kv_cache.h"
#include "hanul/model/llama.h"
#include "hanul/tokenizer/tokenizer.h"

namespace hanul {

struct GenerateOptions {
  int n_predict = -1;               // tokens to generate at most; < 0: until EOG or a full context
  std::vector<std::string> stops;   // stop strings (never emitted); need a tokenizer
  std::shared_ptr<const Grammar> grammar;  // constrains the output; needs a tokenizer
  bool ignore_eos = false;          // keep going past end-of-generation ids
  const std::atomic<bool>* cancel = nullptr;  // checked before every forward (e.g. set by SIGINT)
};

enum class StopReason { kEog, kLength, kStopString, kGrammar, kContextFull, kCancelled };
const char* stop_reason_name(StopReason r);

struct GenerateResult {
  std::vector<int32_t> tokens;  // generated ids (an EOG id that ended the answer is not included)
  std::string text;             // everything passed to on_token, i.e. up to a stop string
  StopReason reason = StopReason::kLength;
  int stop_index = -1;          // which stop string, for kStopString
  int64_t n_prompt = 0;         // prompt tokens
  int64_t n_prompt_reused = 0;  // of which the cache already held
  double prompt_seconds = 0;    // evaluating the new prompt tokens
  double gen_seconds = 0;       // sampling and evaluating the generated tokens
};

// Called for every generated token with the text that may be shown now (possibly empty: part
// of a UTF-8 character or of a possible stop string is held back). Return false to stop.
using TokenCallback = std::function<bool(int32_t id, std::string_view text)>;

class Generator {
 public:
  // tok may be null (a model without a tokenizer): then only ids come out, and stop strings
  // and grammars are refused. The generator uses slot `seq` of the cache.
  Generator(Llama& llama, KvCache& cache, const Tokenizer* tok, int seq = 0);

  // Evaluates the prompt, reusing the cached prefix it shares with the tokens already in the
  // slot; at least the last prompt token is always evaluated, to have its logits.
  // all_logits: keep the logits of every evaluated position (prompt_logits()).
  Status prefill(std::span<const int32_t> prompt, bool all_logits = false);
  // The logits of the last prefill: n_vocab floats per evaluated position (all_logits), or
  // of the last position only.
  std::span<const float> prompt_logits() const { return logits_; }

  // Samples after a prefill until EOG, n_predict, a stop string, the end of the grammar, a
  // full context, cancel or on_token returning false.
  Result<GenerateResult> run(Sampler& sampler, const GenerateOptions& opt, const TokenCallback& on_token);

  // prefill + run.
  Result<GenerateResult> generate(std::span<const int32_t> prompt, Sampler& sampler,
                                  const GenerateOptions& opt, const TokenCallback& on_token);

  // The ids whose keys and values the slot holds.
  const std::vector<int32_t>& cached() const { return cached_; }
  int64_t n_ctx() const { return cache_.n_ctx(); }
  // Forgets the slot's contents.
  void reset();
  // End-of-generation: the tokenizer's EOG ids and the model config's EOS ids.
  bool is_eog(int32_t id) const;

 private:
  Status forward(std::span<const int32_t> tokens, bool all_logits);

  Llama& llama_;
  KvCache& cache_;
  const Tokenizer* tok_;
  int seq_;
  std::vector<int32_t> cached_;
  std::vector<float> logits_;
  int64_t n_prompt_ = 0, n_reused_ = 0;
  double prompt_seconds_ = 0;
  std::vector<int32_t> eog_;
  std::vector<std::string> pieces_;  // for the grammar mask, built on first use
};

}  // namespace hanul
