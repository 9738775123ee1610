// hanul run: generation from a text prompt (-p) or token ids (--prompt-tokens).
// Several id prompts separated by ';' run as one batch of sequences of different
// lengths through the one forward pass. Text streams out as it is generated;
// --ids prints token ids instead.
//
// Sampling: greedy by default (--temp 0), so that a plain `hanul run` is a
// reproducible command and equals transformers' greedy continuation; --temp T
// samples through the llama.cpp chain of generate/sampler.h (top-k 40, top-p
// 0.95, min-p 0.05 unless given), with --seed for a reproducible draw. (llama.cpp
// samples at 0.8 by default; `hanul chat` does.)
#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <optional>

#include <fmt/core.h>

#include "hanul/base/thread_pool.h"
#include "hanul/formats/npy.h"
#include "hanul/generate/generator.h"
#include "hanul/model/llama.h"
#include "hanul/tokenizer/tokenizer.h"
#include "tools/hanul/chat_prompt.h"
#include "tools/hanul/cli_util.h"
#include "tools/hanul/generate_flags.h"

namespace hanul::cli {

int run_main(int argc, char** argv) {
  CLI::App app{"Generate text or token ids from a prompt (greedy unless --temp is given).", "run"};
  std::string model_path, prompt_tokens, prompt_text, logits_path, dump_dir;
  bool has_prompt_text = false, no_display_prompt = false, chat = false;
  int n_predict = 64, n_threads = 0;
  int64_t n_ctx = 0;
  bool ids = false;
  GenerateFlags gen_flags;
  app.add_option("-m,--model", model_path, "GGUF file or Hugging Face folder (default: the model in models/)");
  app.add_option("--prompt-tokens", prompt_tokens,
                 "prompt token ids, e.g. 1,15043,3186; several prompts separated by ';' run as one batch");
  app.add_option("-n,--n-predict", n_predict, "tokens to generate per prompt; -1: until end of generation or a full context")
      ->check(CLI::Range(-1, 1 << 20));
  auto* p_opt = app.add_option("-p,--prompt", prompt_text, "prompt text (\"\" starts from BOS alone)");
  app.add_flag("--chat", chat, "apply the model's chat template to -p as one user message");
  app.add_flag("--ids", ids, "print generated token ids instead of text");
  app.add_flag("--no-display-prompt", no_display_prompt, "do not echo the prompt before the generated text");
  app.add_option("--logits", logits_path, "write float32 logits of every prompt position to this .npy");
  app.add_option("--dump", dump_dir, "write every named intermediate of the prompt pass as .npy files here");
  app.add_option("-t,--threads", n_threads, "threads (default: all cores)")->check(CLI::Range(0, 1024));
  app.add_option("-c,--ctx-size", n_ctx, "context size (default: prompt + n-predict, or the model's with -n -1)")
      ->check(CLI::Range(0, 1 << 24));
  add_generate_flags(app, gen_flags, /*default_temp=*/0.0f);
  if (auto code = parse(app, argc, argv)) return *code;
  has_prompt_text = p_opt->count() > 0;
  if (has_prompt_text && !prompt_tokens.empty())
    return fail("run", "give either -p or --prompt-tokens, not both", kExitUsage);
  if (chat && !has_prompt_text) return fail("run", "--chat needs a text prompt (-p)", kExitUsage);
  auto sampling = sampler_params(gen_flags);
  if (!sampling.ok()) return fail("run", sampling.message(), kExitUsage);
  auto options = generate_options(gen_flags);
  if (!options.ok()) return fail("run", options.message(), kExitUsage);
  options->n_predict = n_predict;

  if (model_path.empty()) model_path = default_model_path();
  auto model = load_model(model_path);
  if (!model.ok()) return fail("run", model.message(), kExitUsage);
  const ModelConfig& cfg = (*model)->config;
  for (const auto& [id, bias] : sampling->logit_bias)
    if (id >= cfg.n_vocab)
      return fail("run", fmt::format("--logit-bias: token id {} is outside the vocabulary (0..{})", id, cfg.n_vocab - 1),
                  kExitUsage);

  // The tokenizer travels with the model (GGUF metadata or the folder's
  // tokenizer files); without one, only ids go in and out.
  auto tokenizer = Tokenizer::load(model_path);
  if (has_prompt_text && !tokenizer.ok())
    return fail("run", "-p needs the model's tokenizer: " + tokenizer.message(), kExitUsage);
  if (!tokenizer.ok() && (!options->stops.empty() || options->grammar))
    return fail("run", "stop strings and grammars need the model's tokenizer: " + tokenizer.message(), kExitUsage);
  const bool text_out = !ids && tokenizer.ok();

  std::vector<std::vector<int32_t>> prompts;
  if (chat) {
    auto chat_prompt = ChatPrompt::load(model_path, *tokenizer);
    if (!chat_prompt.ok()) return fail("run", chat_prompt.message(), kExitUsage);
    const ChatMessage user{"user", prompt_text};
    auto p = chat_prompt->encode(std::span<const ChatMessage>(&user, 1));
    if (!p.ok()) return fail("run", p.message());
    for (const auto& stop : chat_prompt->stops()) options->stops.push_back(stop);
    prompts = {*p};
  } else if (has_prompt_text) {
    std::vector<int32_t> p = tokenizer->encode(prompt_text, /*add_special=*/true, /*parse_special=*/true);
    if (p.empty()) {
      if (cfg.bos_id < 0) return fail("run", "an empty prompt needs a BOS token, and the model has none", kExitUsage);
      p.push_back(cfg.bos_id);
    }
    prompts = {p};
  } else if (prompt_tokens.empty()) {
    if (cfg.bos_id < 0) return fail("run", "the model has no BOS token: give --prompt-tokens", kExitUsage);
    prompts = {{cfg.bos_id}};
  } else {
    auto parsed = parse_token_lists(prompt_tokens);
    if (!parsed.ok()) return fail("run", "--prompt-tokens: " + parsed.message(), kExitUsage);
    prompts = std::move(parsed).value();
  }
  if (prompts.size() > 1 && (!options->stops.empty() || options->grammar))
    return fail("run", "stop strings and grammars work on one prompt, not a batch", kExitUsage);
  int64_t longest = 0;
  for (const auto& p : prompts) longest = std::max<int64_t>(longest, static_cast<int64_t>(p.size()));
  if (n_ctx == 0) n_ctx = n_predict >= 0 ? longest + n_predict : std::max<int64_t>(cfg.n_ctx_train, longest + 1);
  if (longest + std::max(n_predict, 0) > n_ctx)
    return fail("run", fmt::format("prompt ({} tokens) + n-predict ({}) exceed the context size {}", longest,
                                   n_predict, n_ctx), kExitUsage);

  set_default_threads(n_threads);
  Llama llama(*model, &default_pool());
  if (!dump_dir.empty()) {
    std::error_code ec;
    std::filesystem::create_directories(dump_dir, ec);
    llama.set_trace([&](const char* name, int il, const float* data, int64_t rows, int64_t cols) {
      std::string file = il >= 0 ? fmt::format("{}/{}-{}.npy", dump_dir, name, il) : fmt::format("{}/{}.npy", dump_dir, name);
      Status s = write_npy_f32(file, data, {rows, cols});
      if (!s.ok()) fail("run", s.message());
    });
  }
  KvCache cache(cfg, static_cast<int>(prompts.size()), n_ctx);
  const int64_t n_vocab = cfg.n_vocab;
  auto write_logits = [&](std::span<const float> logits) -> int {
    if (logits_path.empty()) return kExitOk;
    Status s = write_npy_f32(logits_path, logits.data(), {static_cast<int64_t>(logits.size()) / n_vocab, n_vocab});
    return s.ok() ? kExitOk : fail("run", s.message());
  };

  if (prompts.size() == 1) {
    // One sequence streams through the shared generation loop.
    Generator gen(llama, cache, tokenizer.ok() ? &*tokenizer : nullptr);
    if (Status s = gen.prefill(prompts[0], /*all_logits=*/!logits_path.empty()); !s.ok()) return fail("run", s.message());
    llama.set_trace(nullptr);
    if (int rc = write_logits(gen.prompt_logits()); rc != kExitOk) return rc;
    if (text_out && !no_display_prompt) {
      std::string shown = tokenizer->decode(prompts[0]);
      std::fwrite(shown.data(), 1, shown.size(), stdout);
      std::fflush(stdout);
    }
    Sampler sampler(*sampling);
    bool first = true;
    auto r = gen.run(sampler, *options, [&](int32_t id, std::string_view text) {
      if (text_out) {
        std::fwrite(text.data(), 1, text.size(), stdout);
      } else if (id >= 0) {
        std::printf(first ? "%d" : " %d", id);
        first = false;
      }
      std::fflush(stdout);
      return true;
    });
    if (!r.ok()) return fail("run", r.message());
    std::printf("\n");
    // The grammar lets EOG through only once complete; a length or context stop cuts it.
    if (options->grammar && (r->reason == StopReason::kLength || r->reason == StopReason::kContextFull))
      std::fprintf(stderr, "hanul run: stopped (%s) before the grammar finished: the output is incomplete\n",
                   stop_reason_name(r->reason));
    return kExitOk;
  }

  // A batch: every sequence samples with its own sampler (seeds seed, seed+1, ...) and
  // prints one line at the end.
  std::vector<SeqTokens> batch;
  for (size_t i = 0; i < prompts.size(); ++i) batch.push_back({static_cast<int>(i), prompts[i], !logits_path.empty()});
  std::vector<float> logits;
  if (Status s = llama.forward(batch, cache, logits); !s.ok()) return fail("run", s.message());
  llama.set_trace(nullptr);
  if (int rc = write_logits(logits); rc != kExitOk) return rc;

  std::vector<int32_t> eog = cfg.eos_ids;
  if (tokenizer.ok()) {
    for (int32_t id = 0; id < tokenizer->n_vocab(); ++id)
      if (tokenizer->is_eog(id)) eog.push_back(id);
  }
  auto is_eog = [&](int32_t id) {
    return !options->ignore_eos && std::find(eog.begin(), eog.end(), id) != eog.end();
  };
  std::vector<Sampler> samplers;
  for (size_t i = 0; i < prompts.size(); ++i) {
    SamplerParams p = *sampling;
    p.seed += static_cast<uint32_t>(i);
    samplers.emplace_back(p);
  }
  std::vector<std::vector<int32_t>> history = prompts, generated(prompts.size());
  std::vector<bool> done(prompts.size(), n_predict == 0);
  std::vector<const float*> last(prompts.size());
  {
    int64_t row = 0;
    for (size_t i = 0; i < prompts.size(); ++i) {
      row += batch[i].all_logits ? static_cast<int64_t>(prompts[i].size()) : 1;
      last[i] = &logits[static_cast<size_t>((row - 1) * n_vocab)];
    }
  }
  std::vector<float> step_logits;
  for (;;) {
    std::vector<SeqTokens> step;
    for (size_t i = 0; i < prompts.size(); ++i) {
      if (done[i]) continue;
      int32_t next = samplers[i].sample({last[i], static_cast<size_t>(n_vocab)}, history[i]);
      if (next < 0 || is_eog(next)) {
        done[i] = true;
        continue;
      }
      generated[i].push_back(next);
      history[i].push_back(next);
      if ((n_predict >= 0 && static_cast<int>(generated[i].size()) >= n_predict) ||
          cache.seq_len(static_cast<int>(i)) + 1 > n_ctx) {
        done[i] = true;
        continue;
      }
      step.push_back({static_cast<int>(i), {next}, false});
    }
    if (step.empty()) break;
    if (Status s = llama.forward(step, cache, step_logits); !s.ok()) return fail("run", s.message());
    for (size_t j = 0; j < step.size(); ++j) last[static_cast<size_t>(step[j].seq)] = &step_logits[j * n_vocab];
  }
  for (const auto& g : generated) {
    std::string line;
    if (text_out) {
      line = tokenizer->decode(g);
    } else {
      for (size_t i = 0; i < g.size(); ++i) line += (i ? " " : "") + std::to_string(g[i]);
    }
    std::printf("%s\n", line.c_str());
  }
  return kExitOk;
}

}  // namespace hanul::cli
