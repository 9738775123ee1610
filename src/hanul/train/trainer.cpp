#include "hanul/train/trainer.h"

#include <fmt/core.h>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <vector>

#include "hanul/base/mapped_file.h"
#include "hanul/base/thread_pool.h"
#include "hanul/kernels/cpu/ops.h"
#include "hanul/kernels/cpu/ops_backward.h"
#include "hanul/model/weights.h"
#include "hanul/tokenizer/tokenizer.h"
#include "hanul/tokenizer/tokenizer_export.h"
#include "hanul/train/checkpoint.h"
#include "hanul/train/data.h"
#include "hanul/train/dist.h"
#include "hanul/train/metrics.h"
#include "hanul/train/schedule.h"
#include "hanul/train/train_step.h"

namespace hanul {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;
using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

// The tokenizer the data was made with, as index.json records it.
Result<std::string> data_tokenizer_path(const std::string& data_dir) {
  const std::string index = (fs::path(data_dir) / "index.json").string();
  HANUL_ASSIGN_OR_RETURN(std::string text, read_text_file(index));
  json j = json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.contains("tokenizer") || !j["tokenizer"].contains("path") ||
      !j["tokenizer"]["path"].is_string())
    return Error{fmt::format("train: {} does not name its tokenizer; give --tokenizer", index)};
  return j["tokenizer"]["path"].get<std::string>();
}

// tokenizer.json and tokenizer_config.json for the checkpoint folder, so it is
// a complete Hugging Face model: written by the exporter into a scratch folder
// and kept in memory for every save.
Result<std::vector<std::pair<std::string, std::string>>> tokenizer_files(const std::string& tokenizer_path,
                                                                         const std::string& scratch) {
  HANUL_ASSIGN_OR_RETURN(auto exported, load_tokenizer_for_export(tokenizer_path));
  if (!exported) return Error{fmt::format("train: {} carries no tokenizer", tokenizer_path)};
  std::error_code ec;
  fs::remove_all(scratch, ec);
  fs::create_directories(scratch, ec);
  if (ec) return Error{fmt::format("train: cannot create {}: {}", scratch, ec.message())};
  HANUL_TRY(write_hf_tokenizer(*exported, scratch));
  std::vector<std::pair<std::string, std::string>> files;
  for (const char* name : {"tokenizer.json", "tokenizer_config.json"}) {
    auto text = read_text_file((fs::path(scratch) / name).string());
    if (text.ok()) files.emplace_back(name, std::move(*text));
  }
  fs::remove_all(scratch, ec);
  return files;
}

// Mean cross-entropy of the model on the first n_batches validation batches
// (rows x (T + 1) tokens each): the forward alone, and cpu::cross_entropy's loss
// without its gradient. Every target counts, so each batch weighs rows · T.
Result<double> validation_loss(TrainableModel& model, const DataShards& val, int64_t rows, int64_t T,
                               int64_t n_batches, ThreadPool* pool) {
  const int64_t V = model.config().n_vocab;
  std::vector<int32_t> ids(static_cast<size_t>(rows * (T + 1)));
  std::vector<int32_t> targets(static_cast<size_t>(rows * T));
  double sum = 0;
  for (int64_t i = 0; i < n_batches; ++i) {
    HANUL_TRY(val.batch(static_cast<uint64_t>(i), static_cast<int>(rows), static_cast<int>(T), ids.data()));
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t t = 0; t < T; ++t)
        targets[static_cast<size_t>(r * T + t)] = ids[static_cast<size_t>(r * (T + 1) + t + 1)];
    TokenBatch b{ids, rows, T + 1};
    HANUL_ASSIGN_OR_RETURN(std::vector<float> logits, model.forward(b, pool));
    sum += cpu::cross_entropy(nullptr, logits.data(), targets.data(), rows * T, V, 1.0f, pool);
  }
  return n_batches > 0 ? sum / static_cast<double>(n_batches) : 0.0;
}

}  // namespace

Result<TrainSummary> run_training(TrainConfig cfg, const TrainRunOptions& options) {
  HANUL_ASSIGN_OR_RETURN(Communicator * comm, Communicator::world());
  const int rank = comm->rank(), n_ranks = comm->size();
  auto say = [&](const std::string& m) {
    if (rank == 0 && options.on_message) options.on_message(m);
  };
  if (cfg.out.empty()) return Error{"train: no run folder: give --out"};
  const std::string out = cfg.out;
  const std::string ckpt_dir = (fs::path(out) / "checkpoint").string();
  std::error_code ec;

  // The model and where the run stands: a checkpoint, an initial model or random weights.
  std::optional<TrainableModel> model;
  if (options.resume) {
    say(fmt::format("resuming from {}", ckpt_dir));
    HANUL_ASSIGN_OR_RETURN(Checkpoint ck, load_checkpoint(ckpt_dir));
    HANUL_ASSIGN_OR_RETURN(TrainConfig saved,
                           parse_train_config_json(ck.state.config_json, ckpt_dir + "/train_config.json"));
    saved.out = out;  // the folder may have moved
    if (options.resume_threads) saved.threads = *options.resume_threads;
    if (options.resume_checkpoint_every) saved.checkpoint_every = *options.resume_checkpoint_every;
    cfg = saved;
    if (ck.state.data_position != ck.model.step())
      return Error{fmt::format("train: {} is at step {} but its data position is {}", ckpt_dir, ck.model.step(),
                               ck.state.data_position)};
    model.emplace(std::move(ck.model));
  } else if (fs::exists(fs::path(ckpt_dir) / "manifest.json", ec)) {
    return Error{fmt::format("train: {} already holds a run (a checkpoint in {}): --resume {} continues it, "
                             "or choose another --out",
                             out, ckpt_dir, out)};
  }
  HANUL_TRY(validate_train_config(cfg, n_ranks));
  // The GEMM's precision is process-wide (ops.h): set for this run, restored after it;
  // refused before anything is written where the CPU cannot do it.
  const cpu::MatmulPrecision precision_before = cpu::matmul_precision();
  const bool bf16 = cfg.matmul_precision == "bf16";
  if (!cpu::set_matmul_precision(bf16 ? cpu::MatmulPrecision::kBf16 : cpu::MatmulPrecision::kFp32))
    return Error{fmt::format("train: matmul_precision bf16 needs a CPU with AVX512_BF16 (this one runs {}); "
                             "use fp32",
                             cpu::isa_name(cpu::active_isa()))};
  struct RestorePrecision {
    cpu::MatmulPrecision p;
    ~RestorePrecision() { cpu::set_matmul_precision(p); }
  } restore_precision{precision_before};

  HANUL_ASSIGN_OR_RETURN(DataShards data,
                         DataShards::open(cfg.data, {.validation = false, .shuffle = cfg.shuffle, .seed = cfg.seed}));
  const int64_t B = cfg.batch_size, T = cfg.seq_len;
  if (data.windows_per_epoch(static_cast<int>(T)) == 0)
    return Error{fmt::format("train: {} has {} training tokens, too few for one sequence of {}", cfg.data,
                             data.total_tokens(), T + 1)};
  std::optional<DataShards> val;
  if (auto v = DataShards::open(cfg.data, {.validation = true}); v.ok() && v->windows_per_epoch(static_cast<int>(T)) > 0)
    val.emplace(std::move(*v));
  else
    say(fmt::format("{} has no validation tokens for a sequence of {}: no validation loss", cfg.data, T + 1));

  if (cfg.tokenizer.empty()) {
    HANUL_ASSIGN_OR_RETURN(cfg.tokenizer, data_tokenizer_path(cfg.data));
  }
  HANUL_ASSIGN_OR_RETURN(Tokenizer tok, Tokenizer::load(cfg.tokenizer));
  if (tok.n_vocab() < data.n_vocab())
    return Error{fmt::format("train: the tokenizer {} has {} tokens but the data was made with {}", cfg.tokenizer,
                             tok.n_vocab(), data.n_vocab())};

  if (!model) {
    if (!cfg.init.empty()) {
      say(fmt::format("loading {}", cfg.init));
      HANUL_ASSIGN_OR_RETURN(auto loaded, load_model(cfg.init));
      HANUL_ASSIGN_OR_RETURN(TrainableModel m, TrainableModel::from_model(*loaded));
      model.emplace(std::move(m));
    } else {
      const ModelConfig mc = model_config_for(cfg, tok.n_vocab(), tok.bos(), tok.eos());
      HANUL_ASSIGN_OR_RETURN(TrainableModel m,
                             TrainableModel::init_random(mc, cfg.seed, static_cast<float>(cfg.init_std)));
      model.emplace(std::move(m));
    }
  }
  if (model->config().n_vocab < data.n_vocab())
    return Error{fmt::format("train: the model has {} tokens but the data has ids up to {}",
                             model->config().n_vocab, data.n_vocab() - 1)};

  const std::string config_json = train_config_to_json(cfg);
  std::vector<std::pair<std::string, std::string>> extra;
  std::optional<MetricsLog> metrics;
  if (rank == 0) {
    fs::create_directories(out, ec);
    if (ec) return Error{fmt::format("train: cannot create {}: {}", out, ec.message())};
    HANUL_ASSIGN_OR_RETURN(extra, tokenizer_files(cfg.tokenizer, (fs::path(out) / "tokenizer.tmp").string()));
    HANUL_ASSIGN_OR_RETURN(MetricsLog m, MetricsLog::open((fs::path(out) / "metrics.jsonl").string(), options.resume ? model->step() : -1));
    metrics.emplace(std::move(m));
  }

  ThreadPool pool(cfg.threads);
  LrSchedule schedule{cfg.warmup_steps, cfg.steps, cfg.lr, cfg.min_lr};
  HANUL_TRY(schedule.validate());
  const int64_t rows_rank = B / n_ranks, rows_micro = rows_rank / cfg.grad_accum;
  const float loss_scale = 1.0f / static_cast<float>(n_ranks * cfg.grad_accum);
  std::vector<int32_t> ids(static_cast<size_t>(B * (T + 1)));

  TrainSummary sum;
  sum.n_params = model->n_params();
  sum.rank = rank;
  sum.n_ranks = n_ranks;
  sum.checkpoint = ckpt_dir;
  sum.step = model->step();
  say(fmt::format("{} parameters; {} training tokens{}; batch {} x {} over {} rank(s), {} thread(s){}", sum.n_params,
                  data.total_tokens(), val ? fmt::format(", {} validation tokens", val->total_tokens()) : "", B, T,
                  n_ranks, pool.n_threads(), bf16 ? "; bf16 matmuls" : ""));
  if (sum.step >= cfg.steps) {
    say(fmt::format("the run is complete: {} of {} steps", sum.step, cfg.steps));
    return sum;
  }

  auto save = [&]() -> Status {
    if (rank == 0) {
      TrainState st;
      st.data_position = model->step();
      st.rng_seed = cfg.seed;
      st.rng_counter = 0;  // the run draws no random numbers after initialisation
      st.config_json = config_json;
      st.extra_files = extra;
      HANUL_TRY(save_checkpoint(ckpt_dir, *model, st));
      HANUL_TRY(write_loss_plot_svg(metrics->records(), (fs::path(out) / "loss.svg").string(),
                                    fmt::format("{}: loss", fs::path(out).filename().string())));
    }
    return comm->barrier();
  };

  for (int64_t s = model->step(); s < cfg.steps; ++s) {
    const auto t0 = Clock::now();
    HANUL_TRY(data.batch(static_cast<uint64_t>(s), static_cast<int>(B), static_cast<int>(T), ids.data()));
    double loss = 0;
    for (int64_t i = 0; i < cfg.grad_accum; ++i) {
      const int64_t row0 = rank * rows_rank + i * rows_micro;
      TokenBatch micro{std::span<const int32_t>(ids).subspan(static_cast<size_t>(row0 * (T + 1)),
                                                             static_cast<size_t>(rows_micro * (T + 1))),
                       rows_micro, T + 1};
      auto l = model->accumulate(micro, loss_scale, &pool);
      if (!l.ok()) return Error{fmt::format("train: step {}: {}", s + 1, l.message())};
      loss += *l;
    }
    loss /= static_cast<double>(cfg.grad_accum);
    if (n_ranks > 1) {
      for (Param& p : model->params()) HANUL_TRY(comm->allreduce_sum(p.grad.data(), static_cast<int64_t>(p.grad.size())));
      HANUL_TRY(comm->allreduce_sum(&loss, 1));
      loss /= n_ranks;
    }
    AdamWParams hp;
    hp.lr = schedule.lr(s);
    hp.beta1 = cfg.beta1;
    hp.beta2 = cfg.beta2;
    hp.eps = cfg.adam_eps;
    hp.weight_decay = cfg.weight_decay;
    const float norm = model->apply_step(hp, static_cast<float>(cfg.grad_clip));
    const int64_t done = s + 1;
    if (!std::isfinite(loss)) return Error{fmt::format("train: step {}: the loss is {} (diverged)", done, loss)};

    TrainProgress pr;
    pr.step = done;
    pr.steps = cfg.steps;
    pr.tokens = done * B * T;
    pr.train_loss = loss;
    pr.lr = hp.lr;
    pr.grad_norm = norm;
    const bool last = done == cfg.steps;
    const bool eval_now = val && (last || (cfg.eval_every > 0 && done % cfg.eval_every == 0));
    if (eval_now && rank == 0) {
      const int64_t windows = static_cast<int64_t>(val->windows_per_epoch(static_cast<int>(T)));
      const int64_t n = std::min(cfg.eval_batches, (windows + rows_micro - 1) / rows_micro);
      HANUL_ASSIGN_OR_RETURN(double vl, validation_loss(*model, *val, rows_micro, T, n, &pool));
      pr.val_loss = vl;
      sum.val_loss = vl;
    }
    // Rank 0's stop request decides for every rank, so all of them save and leave together.
    uint8_t stop = options.stop && options.stop->load() ? 1 : 0;
    if (n_ranks > 1) HANUL_TRY(comm->broadcast(&stop, 1, 0));
    pr.step_seconds = seconds_since(t0);
    if (rank == 0) {
      MetricRecord r;
      r.step = done;
      r.tokens = pr.tokens;
      r.train_loss = loss;
      r.val_loss = pr.val_loss;
      r.lr = hp.lr;
      r.grad_norm = norm;
      r.tokens_per_s = static_cast<double>(B * T) / pr.step_seconds;
      HANUL_TRY(metrics->append(r));
    }
    if (last || stop || done % cfg.checkpoint_every == 0) {
      HANUL_TRY(save());
      pr.checkpointed = true;
    }
    sum.step = done;
    sum.train_loss = loss;
    if (rank == 0 && options.on_step) options.on_step(pr);
    if (stop && !last) {
      sum.stopped = true;
      break;
    }
  }
  return sum;
}

}  // namespace hanul
