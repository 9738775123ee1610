#include "hanul/generate/generator.h"

#include <algorithm>
#include <chrono>
#include <cmath>

#include <fmt/core.h>

#include "hanul/generate/stop_strings.h"
#include "hanul/tokenizer/vocab.h"

namespace hanul {

namespace {

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace

const char* stop_reason_name(StopReason r) {
  switch (r) {
    case StopReason::kEog: return "eog";
    case StopReason::kLength: return "length";
    case StopReason::kStopString: return "stop";
    case StopReason::kGrammar: return "grammar";
    case StopReason::kContextFull: return "context";
    case StopReason::kCancelled: return "cancelled";
  }
  return "?";
}

Generator::Generator(Llama& llama, KvCache& cache, const Tokenizer* tok, int seq)
    : llama_(llama), cache_(cache), tok_(tok), seq_(seq) {
  // A model may end a turn with any of several ids (Llama 3: <|end_of_text|> and <|eot_id|>);
  // the tokenizer knows them from its vocab, the config from eos_token_id (an int or a list).
  eog_ = llama_.config().eos_ids;
  if (tok_) eog_.insert(eog_.end(), tok_->vocab().eog.begin(), tok_->vocab().eog.end());
  std::sort(eog_.begin(), eog_.end());
  eog_.erase(std::unique(eog_.begin(), eog_.end()), eog_.end());
  cache_.clear(seq_);
}

bool Generator::is_eog(int32_t id) const { return std::binary_search(eog_.begin(), eog_.end(), id); }

void Generator::reset() {
  cached_.clear();
  logits_.clear();
  cache_.clear(seq_);
}

Status Generator::forward(std::span<const int32_t> tokens, bool all_logits) {
  SeqTokens s{seq_, std::vector<int32_t>(tokens.begin(), tokens.end()), all_logits};
  Status st = llama_.forward(std::span<const SeqTokens>(&s, 1), cache_, logits_);
  if (!st.ok()) {
    // forward checks its input before writing; keep the slot as it was.
    cache_.set_seq_len(seq_, static_cast<int64_t>(cached_.size()));
    logits_.clear();
    return st;
  }
  cached_.insert(cached_.end(), tokens.begin(), tokens.end());
  return Status::Ok();
}

Status Generator::prefill(std::span<const int32_t> prompt, bool all_logits) {
  if (prompt.empty()) return Error{"generate: the prompt is empty (start from BOS at least)"};
  if (static_cast<int64_t>(prompt.size()) > cache_.n_ctx())
    return Error{fmt::format("generate: the prompt has {} tokens but the context holds {}", prompt.size(),
                             cache_.n_ctx())};
  size_t common = 0;
  while (common < cached_.size() && common < prompt.size() && cached_[common] == prompt[common]) ++common;
  // The last prompt token is evaluated again when everything is cached: its logits are needed.
  if (common == prompt.size()) --common;
  cached_.resize(common);
  cache_.set_seq_len(seq_, static_cast<int64_t>(common));
  auto t0 = std::chrono::steady_clock::now();
  HANUL_TRY(forward(prompt.subspan(common), all_logits));
  prompt_seconds_ = seconds_since(t0);
  n_prompt_ = static_cast<int64_t>(prompt.size());
  n_reused_ = static_cast<int64_t>(common);
  return Status::Ok();
}

Result<GenerateResult> Generator::run(Sampler& sampler, const GenerateOptions& opt,
                                      const TokenCallback& on_token) {
  if (!tok_ && (!opt.stops.empty() || opt.grammar))
    return Error{"generate: stop strings and grammars need the model's tokenizer"};
  const int64_t n_vocab = llama_.config().n_vocab;
  if (static_cast<int64_t>(logits_.size()) < n_vocab) return Error{"generate: run() needs a prefill first"};

  GenerateResult r;
  r.n_prompt = n_prompt_;
  r.n_prompt_reused = n_reused_;
  r.prompt_seconds = prompt_seconds_;

  std::optional<TokenStreamDecoder> decoder;
  if (tok_) {
    // Text starts with the first generated token only when the prompt held
    // nothing but control tokens (BOS); otherwise it continues the prompt.
    const bool at_start = std::all_of(cached_.begin(), cached_.end(), [&](int32_t id) { return tok_->is_control(id); });
    decoder.emplace(*tok_, /*special=*/false, at_start);
  }
  StopMatcher stop(opt.stops);
  std::optional<GrammarMatcher> grammar;
  if (opt.grammar) {
    grammar.emplace(opt.grammar);
    if (pieces_.empty()) pieces_ = GrammarMatcher::pieces_of(*tok_);
  }
  const std::span<const int32_t> eog_allowed =
      opt.ignore_eos ? std::span<const int32_t>() : std::span<const int32_t>(eog_);
  std::vector<float> masked, tight;
  const auto t0 = std::chrono::steady_clock::now();
  auto limit_reached = [&] { return opt.n_predict >= 0 && static_cast<int64_t>(r.tokens.size()) >= opt.n_predict; };
  auto cancelled = [&] { return opt.cancel && opt.cancel->load(std::memory_order_relaxed); };

  for (;;) {
    if (limit_reached()) {
      r.reason = StopReason::kLength;
      break;
    }
    if (cancelled()) {
      r.reason = StopReason::kCancelled;
      break;
    }
    std::span<const float> logits(logits_.data() + logits_.size() - n_vocab, static_cast<size_t>(n_vocab));
    if (grammar) {
      masked.assign(logits.begin(), logits.end());
      grammar->mask_logits(masked, pieces_, eog_allowed);
      logits = masked;
    }
    int32_t id = sampler.sample(logits, cached_);
    if (grammar && id >= 0) {
      // Keep a complete sentence within reach: the tokens left after this one (by n_predict
      // and by the context) must cover the fewest bytes that finish the grammar, one byte per
      // token at worst. Otherwise an unbounded string or array runs into the limit and the
      // output is cut mid-value (a JSON schema's output would not parse). When the draw breaks
      // that, draw again among the tokens that keep it; if none does (a vocabulary without
      // single-byte tokens, or a budget too small from the start), keep the draw.
      int64_t left = cache_.n_ctx() - cache_.seq_len(seq_);
      if (opt.n_predict >= 0)
        left = std::min<int64_t>(left, opt.n_predict - static_cast<int64_t>(r.tokens.size()) - 1);
      auto fits = [&](int32_t t) {
        const size_t i = static_cast<size_t>(t);
        const std::string_view piece = i < pieces_.size() ? std::string_view(pieces_[i]) : std::string_view();
        const size_t need = grammar->min_bytes_to_complete_after(piece);
        return need != GrammarMatcher::kNever && static_cast<int64_t>(need) <= std::max<int64_t>(left, 0);
      };
      if (!fits(id)) {
        tight.assign(logits.begin(), logits.end());
        bool any = false;
        for (size_t t = 0; t < tight.size(); ++t) {
          if (tight[t] == -INFINITY) continue;
          if (fits(static_cast<int32_t>(t))) {
            any = true;
          } else {
            tight[t] = -INFINITY;
          }
        }
        if (any) id = sampler.sample(tight, cached_);
      }
    }
    if (id < 0) {  // the grammar allows nothing more
      r.reason = StopReason::kGrammar;
      break;
    }
    if (!opt.ignore_eos && is_eog(id)) {
      r.reason = StopReason::kEog;
      break;
    }
    if (grammar) grammar->accept_bytes(pieces_[static_cast<size_t>(id)]);
    r.tokens.push_back(id);
    std::string text;
    if (decoder) {
      auto step = stop.push(decoder->push(id));
      text = std::move(step.text);
      if (step.stopped) r.stop_index = step.stop_index;
    }
    r.text += text;
    const bool go_on = on_token(id, text);
    if (stop.stopped()) {
      r.reason = StopReason::kStopString;
      break;
    }
    if (!go_on) {
      r.reason = StopReason::kCancelled;
      break;
    }
    if (grammar && grammar->is_finished()) {
      r.reason = StopReason::kGrammar;
      break;
    }
    if (limit_reached()) continue;  // no need to evaluate the last token
    if (cache_.seq_len(seq_) + 1 > cache_.n_ctx()) {
      r.reason = StopReason::kContextFull;
      break;
    }
    if (cancelled()) continue;
    const int32_t one[1] = {id};
    HANUL_TRY(forward(one, false));
  }
  // Text still held back (an unfinished UTF-8 character, a possible start of a stop string)
  // comes out when generation ends for any other reason than a stop string.
  if (decoder && !stop.stopped()) {
    auto step = stop.push(decoder->flush());
    std::string rest = step.text;
    if (step.stopped) {
      r.reason = StopReason::kStopString;
      r.stop_index = step.stop_index;
    } else {
      rest += stop.flush();
    }
    if (!rest.empty()) {
      r.text += rest;
      on_token(-1, rest);
    }
  }
  r.gen_seconds = seconds_since(t0);
  return r;
}

Result<GenerateResult> Generator::generate(std::span<const int32_t> prompt, Sampler& sampler,
                                           const GenerateOptions& opt, const TokenCallback& on_token) {
  HANUL_TRY(prefill(prompt));
  return run(sampler, opt, on_token);
}

}  // namespace hanul
