// The configuration of a training run (`hanul train`): model shape, data,
// batch, schedule, optimizer, checkpointing. One key table serves the config
// file, the command-line flags (--<key> with '-' for '_') and the copy saved in
// every checkpoint (train_config.json), so a resumed run reads back exactly
// the run it continues.
//
// A config file is JSON (an object) or a flat YAML mapping of scalars:
//
//   # train.yaml
//   data: runs/data          # a folder made by `hanul data prepare`
//   out: runs/tiny
//   dim: 288
//   n_layers: 6
//   steps: 2000
//   lr: 5e-4
//
// Nested YAML, lists, anchors and multi-line strings are not accepted: an
// error names the line. Unknown keys are errors (a typo must not be ignored).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "hanul/base/result.h"
#include "hanul/model/config.h"

namespace hanul {

struct TrainConfig {
  // Data and output.
  std::string data;       // folder of `hanul data prepare`
  std::string tokenizer;  // default: the tokenizer recorded in data/index.json
  std::string out;        // run folder: checkpoint/, metrics.jsonl, loss.svg
  std::string init;       // start from this model (any format the engine reads)

  // Model shape (ignored with init; n_vocab comes from the data).
  int64_t dim = 288;
  int64_t n_layers = 6;
  int64_t n_heads = 6;
  int64_t n_kv_heads = 0;  // 0: n_heads
  int64_t ffn_dim = 768;
  int64_t context = 0;  // n_ctx_train of the model; 0: seq_len
  double rope_theta = 10000.0;
  double rms_eps = 1e-5;
  bool tie_embeddings = true;
  double init_std = 0.02;

  // Batch: batch_size rows of seq_len tokens per optimizer step, over all MPI
  // ranks, split into grad_accum micro-batches on each rank.
  int64_t batch_size = 8;
  int64_t seq_len = 256;
  int64_t grad_accum = 1;
  bool shuffle = true;

  // Schedule and AdamW.
  int64_t steps = 1000;
  int64_t warmup_steps = 100;
  double lr = 5e-4;
  double min_lr = 5e-5;
  double weight_decay = 0.1;
  double beta1 = 0.9;
  double beta2 = 0.95;
  double adam_eps = 1e-8;
  double grad_clip = 1.0;  // <= 0: no clipping
  uint64_t seed = 1337;
  // "fp32", or "bf16": the matmuls' products in bf16 (cpu::MatmulPrecision::kBf16), the
  // weights, gradients and AdamW state still float32. Needs AVX512_BF16.
  std::string matmul_precision = "fp32";

  // Bookkeeping.
  int64_t checkpoint_every = 100;
  int64_t eval_every = 100;   // 0: never (but always at the end when there is validation data)
  int64_t eval_batches = 8;
  int threads = 0;  // 0: all cores (does not change the result)
};

// The keys, in the order `hanul train --help` lists them: name and help text.
struct TrainConfigKey {
  const char* name;
  const char* help;
};
const std::vector<TrainConfigKey>& train_config_keys();

// Sets one key from its text (a flag or a YAML value) or JSON value. Errors
// name the key and say what was expected.
Status set_train_config_key(TrainConfig& cfg, const std::string& key, const std::string& text);

// Reads a config file (JSON or flat YAML) over cfg: keys it names replace
// cfg's values, the others are kept.
Status load_train_config_file(TrainConfig& cfg, const std::string& path);

// Every key as JSON (train_config.json); parse_train_config reads it back.
std::string train_config_to_json(const TrainConfig& cfg);
Result<TrainConfig> parse_train_config_json(const std::string& text, const std::string& where);

// Sizes that make sense: positive counts, batch_size divisible by
// ranks × grad_accum, warm-up within the steps, lr >= min_lr >= 0.
Status validate_train_config(const TrainConfig& cfg, int n_ranks);

// The model a from-scratch run builds: a Llama with the config's shape.
ModelConfig model_config_for(const TrainConfig& cfg, int64_t n_vocab, int32_t bos_id, int32_t eos_id);

}  // namespace hanul
