// The learning-rate schedule of a training run: linear warm-up, then cosine
// decay to a floor. This is the schedule of karpathy/llm.c (train_gpt2.c,
// "learning rate schedule: warmup linearly to max LR, then cosine decay to LR *
// final_learning_rate_frac"), which is nanoGPT's get_lr with the warm-up
// ending on max_lr at step warmup_steps - 1 instead of warmup_steps:
//
//   step < warmup_steps:       lr = max_lr · (step + 1) / warmup_steps
//   warmup_steps <= step <= total_steps:
//                              r  = (step - warmup_steps) / (total_steps - warmup_steps)
//                              lr = min_lr + 0.5 · (1 + cos(π · r)) · (max_lr - min_lr)
//   step > total_steps:        lr = min_lr
//
// Steps count from 0 (the step about to be taken). Computed in double, as the
// Python reference does, and given to AdamWParams::lr as a double.
#pragma once

#include <cstdint>

#include "hanul/base/result.h"

namespace hanul {

struct LrSchedule {
  int64_t warmup_steps = 0;  // 0: no warm-up, start at max_lr
  int64_t total_steps = 1;   // the cosine reaches min_lr here
  double max_lr = 3e-4;
  double min_lr = 3e-5;

  // Refuses warmup_steps < 0, total_steps < warmup_steps, lr < 0, min_lr > max_lr.
  Status validate() const;
  // The learning rate of step `step` (0-based; a negative step is treated as 0).
  double lr(int64_t step) const;
};

}  // namespace hanul
