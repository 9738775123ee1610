// hanul train: train a Llama-family model from random weights (or --init
// MODEL) on data from `hanul data prepare`; --resume continues a run. The
// loop is src/hanul/train/trainer.h; this file reads the config and flags and
// shows progress. Ctrl-C saves a checkpoint after the current step and stops.
#include <unistd.h>

#include <atomic>
#include <csignal>
#include <filesystem>
#include <fmt/core.h>
#include <map>

#include "hanul/train/trainer.h"
#include "tools/hanul/cli_util.h"

namespace hanul::cli {
namespace {

std::atomic<bool> g_stop{false};

extern "C" void on_interrupt(int) {
  g_stop.store(true);
  std::signal(SIGINT, SIG_DFL);  // a second Ctrl-C stops at once
  std::signal(SIGTERM, SIG_DFL);
}

std::string flag_name(const char* key) {
  std::string f = key;
  for (char& c : f)
    if (c == '_') c = '-';
  return "--" + f;
}

std::string hms(double seconds) {
  if (!(seconds >= 0) || seconds > 1e8) return "?";
  const auto s = static_cast<int64_t>(seconds + 0.5);
  if (s >= 3600) return fmt::format("{}h{:02}m", s / 3600, s / 60 % 60);
  return fmt::format("{}m{:02}s", s / 60, s % 60);
}

// The progress line: bar, loss, tokens/s over the last steps and the ETA.
class Progress {
 public:
  explicit Progress(bool tty) : tty_(tty) {}

  void step(const TrainProgress& p) {
    recent_s_ += p.step_seconds;
    recent_tokens_ += p.tokens - last_tokens_;
    last_tokens_ = p.tokens;
    ++recent_steps_;
    const double tok_s = recent_s_ > 0 ? recent_tokens_ / recent_s_ : 0;
    const double eta = recent_steps_ ? recent_s_ / recent_steps_ * static_cast<double>(p.steps - p.step) : 0;
    if (p.val_loss) last_val_ = *p.val_loss;
    constexpr int kWidth = 24;
    const int fill = static_cast<int>(kWidth * p.step / std::max<int64_t>(p.steps, 1));
    std::string bar = std::string(fill, '=') + (fill < kWidth ? ">" : "") + std::string(std::max(0, kWidth - fill - 1), ' ');
    const std::string line = fmt::format(
        "[{}] {}/{} loss {:.4f}{} lr {:.2e} |g| {:.3f} {:.0f} tok/s ETA {}", bar, p.step, p.steps, p.train_loss,
        last_val_ ? fmt::format(" val {:.4f}", *last_val_) : "", p.lr, p.grad_norm, tok_s, hms(eta));
    const bool event = p.val_loss.has_value() || p.checkpointed || p.step == p.steps;
    if (tty_) {
      fmt::print(stderr, "\r\033[K{}", line);
      if (event) fmt::print(stderr, "{}\n", p.checkpointed ? "  (checkpoint)" : "");
    } else if (event || p.step % std::max<int64_t>(1, p.steps / 50) == 0 || p.step == 1) {
      fmt::print(stderr, "{}{}\n", line, p.checkpointed ? "  (checkpoint)" : "");
    }
    if (recent_steps_ >= 20) {  // a moving window, so the rate follows the machine
      recent_s_ /= 2;
      recent_tokens_ /= 2;
      recent_steps_ /= 2;
    }
  }

 private:
  bool tty_;
  double recent_s_ = 0, recent_tokens_ = 0;
  int64_t recent_steps_ = 0, last_tokens_ = -1;
  std::optional<double> last_val_;
};

}  // namespace

int train_main(int argc, char** argv) {
  CLI::App app{
      "Train a Llama-family model on data from `hanul data prepare`: from random weights, or from --init MODEL. "
      "Writes OUT/checkpoint (a Hugging Face model folder with optimizer state), OUT/metrics.jsonl and "
      "OUT/loss.svg. Keys come from --config FILE (JSON or flat YAML) and are overridden by flags.",
      "train"};
  std::string config_path, resume_dir;
  app.add_option("--config", config_path, "train.yaml or train.json");
  app.add_option("--resume", resume_dir, "continue the run in this folder from its last checkpoint");
  std::map<std::string, std::string> flags;
  std::vector<std::pair<std::string, CLI::Option*>> key_options;
  for (const TrainConfigKey& k : train_config_keys())
    key_options.emplace_back(k.name, app.add_option(flag_name(k.name), flags[k.name], k.help));
  if (auto code = parse(app, argc, argv)) return *code;

  TrainConfig cfg;
  TrainRunOptions opt;
  if (!resume_dir.empty()) {
    opt.resume = true;
    cfg.out = resume_dir;
    // Only what cannot change the result may differ from the checkpoint's run.
    for (auto& [key, o] : key_options) {
      if (o->count() == 0) continue;
      if (key != "threads" && key != "checkpoint_every" && key != "out")
        return fail("train", fmt::format("--resume continues the run as it was configured; {} cannot change "
                                         "(only --threads and --checkpoint-every can)",
                                         flag_name(key.c_str())),
                    kExitUsage);
    }
    if (!config_path.empty()) return fail("train", "--resume takes the config from the checkpoint, not --config",
                                          kExitUsage);
  } else if (!config_path.empty()) {
    if (auto st = load_train_config_file(cfg, config_path); !st.ok()) return fail("train", st.message(), kExitUsage);
  }
  for (auto& [key, o] : key_options)
    if (o->count() > 0)
      if (auto st = set_train_config_key(cfg, key, flags[key]); !st.ok())
        return fail("train", st.message(), kExitUsage);
  if (opt.resume) {
    cfg.out = resume_dir;
    for (auto& [key, o] : key_options) {
      if (o->count() > 0 && key == "threads") opt.resume_threads = cfg.threads;
      if (o->count() > 0 && key == "checkpoint_every") opt.resume_checkpoint_every = cfg.checkpoint_every;
    }
  }
  if (!opt.resume) {
    if (auto st = validate_train_config(cfg, 1); !st.ok()) return fail("train", st.message(), kExitUsage);
    std::error_code ec;
    if (!cfg.data.empty() && !std::filesystem::exists(std::filesystem::path(cfg.data) / "index.json", ec))
      return fail("train",
                  fmt::format("'{}' is not a prepared data folder (no index.json; make one with `hanul data "
                              "prepare`)",
                              cfg.data),
                  kExitUsage);
  }

  Progress progress(isatty(STDERR_FILENO) != 0);
  opt.on_message = [](const std::string& m) { fmt::print(stderr, "hanul train: {}\n", m); };
  opt.on_step = [&](const TrainProgress& p) { progress.step(p); };
  opt.stop = &g_stop;
  std::signal(SIGINT, on_interrupt);
  std::signal(SIGTERM, on_interrupt);

  auto r = run_training(cfg, opt);
  std::signal(SIGINT, SIG_DFL);
  std::signal(SIGTERM, SIG_DFL);
  if (!r.ok()) return fail("train", r.message());
  if (r->rank == 0) {
    if (r->stopped)
      fmt::print(stderr, "hanul train: stopped at step {}; `hanul train --resume {}` continues\n", r->step,
                 cfg.out);
    fmt::print("{}: step {}, train loss {:.4f}{}\n", r->checkpoint, r->step, r->train_loss,
               r->val_loss ? fmt::format(", validation loss {:.4f}", *r->val_loss) : "");
  }
  return r->stopped ? 130 : kExitOk;
}

}  // namespace hanul::cli
