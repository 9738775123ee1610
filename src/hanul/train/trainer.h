// The training loop of `hanul train` (issue 5): builds or loads the model,
// reads batches from prepared data shards, takes optimizer steps (gradient
// accumulation, MPI data parallelism, clipping, AdamW on the warm-up + cosine
// schedule), evaluates on the validation split, logs metrics, draws the loss
// plot and saves atomic checkpoints.
//
// The run folder (TrainConfig::out):
//   checkpoint/     the last complete checkpoint (train/checkpoint.h) plus
//                   tokenizer.json and tokenizer_config.json: a Hugging Face
//                   model folder every other command loads
//   metrics.jsonl   one record per step (train/metrics.h)
//   loss.svg        train and validation loss against step
//
// Determinism: batch `s` is a function of the data, the seed and s alone
// (DataShards), the kernels do not depend on the thread count and the
// checkpoint holds every bit of state, so a run resumed from any checkpoint
// reaches the same weights as an uninterrupted one.
//
// MPI: each of R ranks takes batch_size / R rows of every step's batch, the
// gradients are summed over ranks (each scaled by 1 / (R · grad_accum)), and
// every rank takes the same AdamW step. So R ranks of batch B / R match one
// rank of batch B with R times the accumulation, up to the order of the float
// sums. Only rank 0 writes files.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>

#include "hanul/base/result.h"
#include "hanul/train/train_config.h"

namespace hanul {

struct TrainProgress {
  int64_t step = 0;   // optimizer steps done (1-based after the first step)
  int64_t steps = 0;  // of the run
  int64_t tokens = 0;  // training tokens seen, all ranks
  double train_loss = 0;
  std::optional<double> val_loss;  // on evaluation steps
  double lr = 0;
  double grad_norm = 0;
  double step_seconds = 0;  // wall time of this step (with evaluation and checkpoint)
  bool checkpointed = false;
};

struct TrainRunOptions {
  // Continue the run in cfg.out from its checkpoint. The config is the
  // checkpoint's; only these two may change, as they do not change the result.
  bool resume = false;
  std::optional<int> resume_threads;
  std::optional<int64_t> resume_checkpoint_every;
  std::function<void(const TrainProgress&)> on_step;      // rank 0
  std::function<void(const std::string&)> on_message;     // rank 0: what the run is doing
  const std::atomic<bool>* stop = nullptr;  // when set: save a checkpoint after this step and return
};

struct TrainSummary {
  int64_t step = 0;    // steps done
  bool stopped = false;  // by TrainRunOptions::stop, before cfg.steps
  double train_loss = 0;
  std::optional<double> val_loss;  // the last evaluation
  int64_t n_params = 0;
  int rank = 0, n_ranks = 1;
  std::string checkpoint;  // folder of the last checkpoint
};

// Runs (or resumes) the training run described by cfg. With resume, cfg
// supplies only out; everything else comes from the checkpoint's
// train_config.json and the resume_* overrides.
Result<TrainSummary> run_training(TrainConfig cfg, const TrainRunOptions& options);

}  // namespace hanul
