// hanul run: greedy generation from a text prompt (-p) or token ids
// (--prompt-tokens). Several id prompts separated by ';' run as one batch of
// sequences of different lengths through the one forward pass. Text streams
// out as it is generated; --ids prints token ids instead.
#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <optional>

#include <fmt/core.h>

#include "hanul/base/thread_pool.h"
#include "hanul/formats/npy.h"
#include "hanul/model/llama.h"
#include "hanul/tokenizer/tokenizer.h"
#include "tools/hanul/cli_util.h"

namespace hanul::cli {

int run_main(int argc, char** argv) {
  CLI::App app{"Generate tokens from a prompt (greedy).", "run"};
  std::string model_path, prompt_tokens, prompt_text, logits_path, dump_dir;
  bool has_prompt_text = false, no_display_prompt = false;
  int n_predict = 64, n_threads = 0;
  int64_t n_ctx = 0;
  bool ids = false, ignore_eos = false;
  app.add_option("-m,--model", model_path, "GGUF file or Hugging Face folder (default: the model in models/)");
  app.add_option("--prompt-tokens", prompt_tokens,
                 "prompt token ids, e.g. 1,15043,3186; several prompts separated by ';' run as one batch");
  app.add_option("-n,--n-predict", n_predict, "tokens to generate per prompt")->check(CLI::Range(0, 1 << 20));
  auto* p_opt = app.add_option("-p,--prompt", prompt_text, "prompt text (\"\" starts from BOS alone)");
  app.add_flag("--ids", ids, "print generated token ids instead of text");
  app.add_flag("--no-display-prompt", no_display_prompt, "do not echo the prompt before the generated text");
  app.add_option("--logits", logits_path, "write float32 logits of every prompt position to this .npy");
  app.add_option("--dump", dump_dir, "write every named intermediate of the prompt pass as .npy files here");
  app.add_option("-t,--threads", n_threads, "threads (default: all cores)")->check(CLI::Range(0, 1024));
  app.add_option("-c,--ctx-size", n_ctx, "context size (default: prompt + n-predict)")->check(CLI::Range(0, 1 << 24));
  app.add_flag("--ignore-eos", ignore_eos, "keep generating past end-of-sequence tokens");
  if (auto code = parse(app, argc, argv)) return *code;
  has_prompt_text = p_opt->count() > 0;
  if (has_prompt_text && !prompt_tokens.empty())
    return fail("run", "give either -p or --prompt-tokens, not both", kExitUsage);

  if (model_path.empty()) model_path = default_model_path();
  auto model = load_model(model_path);
  if (!model.ok()) return fail("run", model.message(), kExitUsage);
  const ModelConfig& cfg = (*model)->config;

  // The tokenizer travels with the model (GGUF metadata or the folder's
  // tokenizer files); without one, only ids go in and out.
  auto tokenizer = Tokenizer::load(model_path);
  if (has_prompt_text && !tokenizer.ok())
    return fail("run", "-p needs the model's tokenizer: " + tokenizer.message(), kExitUsage);
  const bool text_out = !ids && tokenizer.ok();

  std::vector<std::vector<int32_t>> prompts;
  if (has_prompt_text) {
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
  int64_t longest = 0;
  for (const auto& p : prompts) longest = std::max<int64_t>(longest, static_cast<int64_t>(p.size()));
  if (n_ctx == 0) n_ctx = longest + n_predict;
  if (longest + n_predict > n_ctx)
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
  std::vector<SeqTokens> batch;
  for (size_t i = 0; i < prompts.size(); ++i) batch.push_back({static_cast<int>(i), prompts[i], !logits_path.empty()});

  std::vector<float> logits;
  if (Status s = llama.forward(batch, cache, logits); !s.ok()) return fail("run", s.message());
  llama.set_trace(nullptr);
  const int64_t n_vocab = cfg.n_vocab;
  if (!logits_path.empty()) {
    Status s = write_npy_f32(logits_path, logits.data(), {static_cast<int64_t>(logits.size()) / n_vocab, n_vocab});
    if (!s.ok()) return fail("run", s.message());
  }

  // Greedy decoding: each sequence continues from the argmax of its last row.
  auto is_eos = [&](int32_t id) {
    return !ignore_eos && std::find(cfg.eos_ids.begin(), cfg.eos_ids.end(), id) != cfg.eos_ids.end();
  };
  std::vector<std::vector<int32_t>> generated(prompts.size());
  std::vector<bool> done(prompts.size(), n_predict == 0);
  std::vector<const float*> last(prompts.size());
  {
    int64_t row = 0;
    for (size_t i = 0; i < prompts.size(); ++i) {
      row += batch[i].all_logits ? static_cast<int64_t>(prompts[i].size()) : 1;
      last[i] = &logits[static_cast<size_t>((row - 1) * n_vocab)];
    }
  }
  // One sequence streams as it goes; a batch prints a line per sequence at the end.
  const bool stream = prompts.size() == 1;
  std::optional<TokenStreamDecoder> decoder;
  if (text_out) decoder.emplace(*tokenizer);
  auto emit = [&](int32_t id) {
    if (!decoder) {
      std::printf(generated[0].size() > 1 ? " %d" : "%d", id);
    } else {
      std::string piece = decoder->push(id);
      std::fwrite(piece.data(), 1, piece.size(), stdout);
    }
    std::fflush(stdout);
  };
  if (stream && text_out && !no_display_prompt) {
    std::string shown = tokenizer->decode(prompts[0]);
    std::fwrite(shown.data(), 1, shown.size(), stdout);
    std::fflush(stdout);
  }
  std::vector<float> step_logits;
  for (;;) {
    std::vector<SeqTokens> step;
    for (size_t i = 0; i < prompts.size(); ++i) {
      if (done[i]) continue;
      int32_t next = static_cast<int32_t>(std::max_element(last[i], last[i] + n_vocab) - last[i]);
      if (is_eos(next)) {
        done[i] = true;
        continue;
      }
      generated[i].push_back(next);
      if (stream) emit(next);
      if (static_cast<int>(generated[i].size()) >= n_predict) {
        done[i] = true;
        continue;
      }
      step.push_back({static_cast<int>(i), {next}, false});
    }
    if (step.empty()) break;
    if (Status s = llama.forward(step, cache, step_logits); !s.ok()) return fail("run", s.message());
    for (size_t j = 0; j < step.size(); ++j) last[static_cast<size_t>(step[j].seq)] = &step_logits[j * n_vocab];
  }
  if (stream) {
    if (decoder) {
      std::string rest = decoder->flush();
      std::fwrite(rest.data(), 1, rest.size(), stdout);
    }
    std::printf("\n");
    return kExitOk;
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
