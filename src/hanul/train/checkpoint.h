// A training checkpoint: everything a run needs to continue bit for bit where
// it stopped (issue 5) — the float32 parameters, AdamW's moments and step
// count, the position in the data, the RNG state and the run's config.
//
// On disk, one folder:
//   model.safetensors      the parameters under their Hugging Face names
//   config.json            the model's Hugging Face config (so the folder is
//                          also a model every other command loads)
//   optimizer.safetensors  "<hf name>.exp_avg" and "<hf name>.exp_avg_sq"
//   train_config.json      the run's config JSON, verbatim
//   manifest.json          format/version, AdamW step, data position, RNG
//                          state and, per file, its size and 64-bit FNV-1a
//   (extra files)          TrainState::extra_files, e.g. tokenizer.json
//
// Atomicity: the whole folder is written under "<dir>.tmp" (files fsynced,
// manifest last), then swapped in with one rename (renameat2 RENAME_EXCHANGE
// when <dir> exists) and the old contents removed. A save killed at any moment
// leaves <dir> either the previous checkpoint or the new one, never a mix; a
// leftover "<dir>.tmp" is ignored by load and cleared by the next save.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "hanul/base/result.h"
#include "hanul/train/train_step.h"

namespace hanul {

struct TrainState {
  int64_t data_position = 0;  // where the data loader resumes (its own unit)
  uint64_t rng_seed = 0;      // the run's RNG: seed and draws taken so far
  uint64_t rng_counter = 0;
  std::string config_json = "{}";  // the run's config; must parse as JSON
  // More files for the folder, name -> contents (the tokenizer, so the folder
  // is a complete model). Saved and checksummed; load checks them but does
  // not read them back.
  std::vector<std::pair<std::string, std::string>> extra_files;
};

struct Checkpoint {
  TrainableModel model;
  TrainState state;
};

Status save_checkpoint(const std::string& dir, const TrainableModel& model,
                       const TrainState& state);

// Validates the manifest, every file's size and checksum, and every tensor's
// name, dtype and shape against the model config before building the model;
// a truncated or corrupt checkpoint is refused with the file and what is wrong.
Result<Checkpoint> load_checkpoint(const std::string& dir);

}  // namespace hanul
