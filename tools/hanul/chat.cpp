// hanul chat: an interactive chat with a model, through its own chat template (or the ChatML
// fallback) and the shared generation loop (generate/generator.h).
//
// Input: one line is one message; a line ending in '\' continues on the next line (the
// backslash becomes a newline). Commands: /reset /system TEXT /save FILE /load FILE /help /quit.
// Ctrl-C stops the answer being written; Ctrl-C at the prompt asks, a second one quits; EOF
// (Ctrl-D) quits. History is kept within the context window: when the next prompt would not
// leave room for an answer, the oldest turns are dropped (the system message stays) with a
// notice. The KV cache is reused across turns for the prefix the new prompt shares with the
// old one. The "> " prompt appears only on a terminal and notices go to stderr, so with piped
// stdin, stdout carries the answers alone, one line-ended answer per message.
#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <fmt/core.h>
#include <nlohmann/json.hpp>

#include "hanul/base/thread_pool.h"
#include "hanul/generate/generator.h"
#include "hanul/model/llama.h"
#include "hanul/tokenizer/tokenizer.h"
#include "tools/hanul/chat_prompt.h"
#include "tools/hanul/cli_util.h"
#include "tools/hanul/generate_flags.h"

namespace hanul::cli {

namespace {

// Set by SIGINT; the generation loop polls it (a lock-free atomic is safe in a handler).
std::atomic<bool> g_interrupt{false};
static_assert(std::atomic<bool>::is_always_lock_free);

void on_sigint(int) { g_interrupt.store(true); }

// Lines from a file descriptor with read(2), so that SIGINT interrupts a waiting read (the
// handler is installed without SA_RESTART) instead of being swallowed by stdio.
class LineReader {
 public:
  enum class Got { kLine, kEof, kInterrupted };
  explicit LineReader(int fd) : fd_(fd) {}

  Got read_line(std::string& line) {
    line.clear();
    for (;;) {
      if (auto nl = buf_.find('\n'); nl != std::string::npos) {
        line = buf_.substr(0, nl);
        buf_.erase(0, nl + 1);
        return Got::kLine;
      }
      if (eof_) {
        if (buf_.empty()) return Got::kEof;
        line = std::move(buf_);
        buf_.clear();
        return Got::kLine;
      }
      char tmp[4096];
      ssize_t n = ::read(fd_, tmp, sizeof tmp);
      if (n < 0 && errno == EINTR) {
        if (g_interrupt.load()) {
          buf_.clear();  // the terminal dropped the typed line too
          return Got::kInterrupted;
        }
        continue;
      }
      if (n <= 0) {
        eof_ = true;
        continue;
      }
      buf_.append(tmp, static_cast<size_t>(n));
    }
  }

 private:
  int fd_;
  std::string buf_;
  bool eof_ = false;
};

void notice(const std::string& text) {
  std::fflush(stdout);
  std::fprintf(stderr, "[%s]\n", text.c_str());
  std::fflush(stderr);
}

Status save_messages(const std::string& path, const std::vector<ChatMessage>& messages) {
  nlohmann::json j = nlohmann::json::array();
  for (const auto& m : messages) j.push_back({{"role", m.role}, {"content", m.content}});
  const std::string text = j.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out) return Error{fmt::format("/save {}: cannot write the file", path)};
    out << text;
    if (!out.flush()) return Error{fmt::format("/save {}: write failed", path)};
  }
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);  // a crash never leaves half a file
  if (ec) return Error{fmt::format("/save {}: {}", path, ec.message())};
  return Status::Ok();
}

Result<std::vector<ChatMessage>> load_messages(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Error{fmt::format("/load {}: cannot open the file", path)};
  std::ostringstream ss;
  ss << in.rdbuf();
  auto j = nlohmann::json::parse(ss.str(), nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return Error{fmt::format("/load {}: not valid JSON", path)};
  if (!j.is_array())
    return Error{fmt::format("/load {}: expected a JSON list of {{\"role\", \"content\"}} messages", path)};
  std::vector<ChatMessage> out;
  for (size_t i = 0; i < j.size(); ++i) {
    const auto& m = j[i];
    if (!m.is_object() || !m.contains("role") || !m.contains("content") || !m["role"].is_string() ||
        !m["content"].is_string())
      return Error{fmt::format("/load {}: message {} is not an object with string \"role\" and \"content\"", path, i)};
    std::string role = m["role"];
    if (role != "system" && role != "user" && role != "assistant")
      return Error{fmt::format("/load {}: message {} has role '{}' (system, user or assistant)", path, i, role)};
    if (role == "system" && i != 0)
      return Error{fmt::format("/load {}: message {} is a system message; only the first may be", path, i)};
    out.push_back({role, m["content"]});
  }
  return out;
}

std::string trim(const std::string& s) {
  size_t a = s.find_first_not_of(" \t\r\n"), b = s.find_last_not_of(" \t\r\n");
  return a == std::string::npos ? "" : s.substr(a, b - a + 1);
}

constexpr const char* kHelp =
    "commands: /reset (forget the conversation), /system TEXT (set the system message; empty removes it),\n"
    "          /save FILE, /load FILE (the conversation as a JSON list of {role, content}), /help, /quit\n"
    "input:    a line ending in '\\' continues on the next line; Ctrl-C stops an answer; Ctrl-D quits";

}  // namespace

int chat_main(int argc, char** argv) {
  CLI::App app{"Chat with a model (its own chat template, streaming, history within the context).", "chat"};
  std::string model_path, system_text;
  bool stats = false;
  int n_predict = -1, n_threads = 0;
  int64_t n_ctx = 0;
  GenerateFlags gen_flags;
  app.add_option("-m,--model", model_path, "GGUF file or Hugging Face folder (default: the model in models/)");
  app.add_option("--system", system_text, "system message");
  app.add_flag("--stats", stats, "print prompt and generation speed (tokens/s) after each answer");
  app.add_option("-n,--n-predict", n_predict, "tokens per answer at most; -1: until the model ends its turn")
      ->capture_default_str()->check(CLI::Range(-1, 1 << 24));
  app.add_option("-c,--ctx-size", n_ctx, "context size (default: the model's, at most 4096)")->check(CLI::Range(0, 1 << 24));
  app.add_option("-t,--threads", n_threads, "threads (default: all cores)")->check(CLI::Range(0, 1024));
  add_generate_flags(app, gen_flags, /*default_temp=*/0.8f);
  if (auto code = parse(app, argc, argv)) return *code;
  auto sampling = sampler_params(gen_flags);
  if (!sampling.ok()) return fail("chat", sampling.message(), kExitUsage);
  auto options = generate_options(gen_flags);
  if (!options.ok()) return fail("chat", options.message(), kExitUsage);

  if (model_path.empty()) model_path = default_model_path();
  auto model = load_model(model_path);
  if (!model.ok()) return fail("chat", model.message(), kExitUsage);
  const ModelConfig& cfg = (*model)->config;
  auto tokenizer = Tokenizer::load(model_path);
  if (!tokenizer.ok()) return fail("chat", "chat needs the model's tokenizer: " + tokenizer.message(), kExitUsage);
  auto chat_prompt = ChatPrompt::load(model_path, *tokenizer);
  if (!chat_prompt.ok()) return fail("chat", chat_prompt.message(), kExitUsage);
  for (const auto& stop : chat_prompt->stops()) options->stops.push_back(stop);
  options->n_predict = n_predict;
  options->cancel = &g_interrupt;
  if (n_ctx == 0) n_ctx = std::min<int64_t>(cfg.n_ctx_train > 0 ? cfg.n_ctx_train : 4096, 4096);
  if (n_ctx < 2) return fail("chat", "the context must hold at least 2 tokens", kExitUsage);

  set_default_threads(n_threads);
  Llama llama(*model, &default_pool());
  KvCache cache(cfg, 1, n_ctx);
  Generator gen(llama, cache, &*tokenizer);
  Sampler sampler(*sampling);

  struct sigaction sa {};
  sa.sa_handler = on_sigint;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = 0;  // no SA_RESTART: a blocked read returns EINTR
  sigaction(SIGINT, &sa, nullptr);

  const bool tty = ::isatty(STDIN_FILENO) == 1;
  if (tty) {
    std::fprintf(stderr, "hanul chat: %s (%s chat template, context %lld)\n%s\n", model_path.c_str(),
                 chat_prompt->is_fallback() ? "ChatML fallback" : "the model's", static_cast<long long>(n_ctx), kHelp);
  }
  std::vector<ChatMessage> messages;
  if (!system_text.empty()) messages.push_back({"system", system_text});
  // Room kept for the answer when fitting the history into the context.
  const int64_t reserve = n_predict > 0 ? std::min<int64_t>(n_predict, n_ctx / 2) : std::max<int64_t>(n_ctx / 4, 1);

  LineReader reader(STDIN_FILENO);
  bool asked_to_quit = false;  // a Ctrl-C at the prompt; the next one quits
  for (;;) {
    // Read one message (several lines when they end in '\').
    std::string input;
    bool quit = false, got = false;
    while (!got) {
      if (tty) {
        std::fprintf(stdout, input.empty() ? "> " : "... ");
        std::fflush(stdout);
      }
      std::string line;
      auto r = reader.read_line(line);
      if (r == LineReader::Got::kInterrupted) {
        g_interrupt.store(false);
        if (asked_to_quit) {
          quit = true;
          break;
        }
        asked_to_quit = true;
        input.clear();
        std::fprintf(stderr, "\n(Ctrl-C again or Ctrl-D to quit)\n");
        continue;
      }
      asked_to_quit = false;
      if (r == LineReader::Got::kEof) {
        if (input.empty()) quit = true;
        break;
      }
      if (!line.empty() && line.back() == '\r') line.pop_back();
      if (!line.empty() && line.back() == '\\') {
        line.pop_back();
        input += line + "\n";
        continue;
      }
      input += line;
      got = true;
    }
    if (quit) break;
    const std::string msg = trim(input);
    if (msg.empty()) continue;

    if (msg[0] == '/') {
      const size_t sp = msg.find_first_of(" \t\n");
      const std::string cmd = msg.substr(0, sp);
      const std::string arg = sp == std::string::npos ? "" : trim(msg.substr(sp));
      if (cmd == "/quit" || cmd == "/exit") break;
      if (cmd == "/help") {
        std::fprintf(stderr, "%s\n", kHelp);
      } else if (cmd == "/reset") {
        std::erase_if(messages, [](const ChatMessage& m) { return m.role != "system"; });
        gen.reset();
        notice("conversation cleared");
      } else if (cmd == "/system") {
        std::erase_if(messages, [](const ChatMessage& m) { return m.role == "system"; });
        if (!arg.empty()) messages.insert(messages.begin(), ChatMessage{"system", arg});
        notice(arg.empty() ? "system message removed" : "system message set");
      } else if (cmd == "/save" || cmd == "/load") {
        if (arg.empty()) {
          notice(cmd + " needs a file name");
        } else if (cmd == "/save") {
          Status s = save_messages(arg, messages);
          notice(s.ok() ? fmt::format("saved {} messages to {}", messages.size(), arg) : s.message());
        } else {
          auto loaded = load_messages(arg);
          if (!loaded.ok()) {
            notice(loaded.message());
          } else {
            messages = std::move(loaded).value();
            notice(fmt::format("loaded {} messages from {}", messages.size(), arg));
          }
        }
      } else {
        notice(fmt::format("unknown command {} (/help lists them)", cmd));
      }
      continue;
    }

    // Fit the history with the new message into the context, oldest turns first out.
    messages.push_back({"user", msg});
    std::vector<int32_t> prompt;
    size_t dropped = 0;
    bool fits = false;
    for (;;) {
      auto ids = chat_prompt->encode(messages);
      if (!ids.ok()) {
        notice(ids.message());
        break;
      }
      if (static_cast<int64_t>(ids->size()) + reserve <= n_ctx) {
        prompt = std::move(ids).value();
        fits = true;
        break;
      }
      const size_t first = (!messages.empty() && messages[0].role == "system") ? 1 : 0;
      if (messages.size() - first <= 1) {
        notice(fmt::format("the message does not fit: the prompt is {} tokens and the context holds {} "
                           "(with {} kept for the answer); try a shorter message or a larger -c",
                           ids->size(), n_ctx, reserve));
        break;
      }
      // Drop the oldest user turn and the answers that followed it.
      messages.erase(messages.begin() + static_cast<std::ptrdiff_t>(first));
      ++dropped;
      while (messages.size() - first > 1 && messages[first].role != "user") {
        messages.erase(messages.begin() + static_cast<std::ptrdiff_t>(first));
        ++dropped;
      }
    }
    if (dropped) notice(fmt::format("context full: dropped the {} oldest messages", dropped));
    if (!fits) {
      messages.pop_back();
      continue;
    }

    g_interrupt.store(false);
    auto r = gen.generate(prompt, sampler, *options, [](int32_t, std::string_view text) {
      std::fwrite(text.data(), 1, text.size(), stdout);
      std::fflush(stdout);
      return true;
    });
    std::fputc('\n', stdout);
    std::fflush(stdout);
    if (!r.ok()) {
      notice(r.message());
      messages.pop_back();
      gen.reset();
      continue;
    }
    // What was shown is what the model said, even when cut short.
    messages.push_back({"assistant", r->text});
    if (r->reason == StopReason::kCancelled) {
      g_interrupt.store(false);
      notice("stopped");
    } else if (r->reason == StopReason::kContextFull) {
      notice("the context is full: the answer was cut; older turns will be dropped next time");
    }
    if (stats) {
      const int64_t evaluated = r->n_prompt - r->n_prompt_reused;
      const double gen_tps = r->gen_seconds > 0 ? r->tokens.size() / r->gen_seconds : 0;
      const double prompt_tps = r->prompt_seconds > 0 ? evaluated / r->prompt_seconds : 0;
      notice(fmt::format("prompt: {} tokens ({} reused, {} evaluated) at {:.1f} tokens/s; "
                         "generation: {} tokens at {:.1f} tokens/s",
                         r->n_prompt, r->n_prompt_reused, evaluated, prompt_tps, r->tokens.size(), gen_tps));
    }
  }
  if (tty) std::fputc('\n', stdout);
  return kExitOk;
}

}  // namespace hanul::cli
