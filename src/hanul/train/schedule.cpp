#include "hanul/train/schedule.h"

#include <fmt/core.h>

#include <cmath>
#include <numbers>

namespace hanul {

Status LrSchedule::validate() const {
  if (warmup_steps < 0)
    return Error{fmt::format("lr schedule: warmup_steps {} is negative", warmup_steps)};
  if (total_steps < warmup_steps)
    return Error{fmt::format("lr schedule: total_steps {} is below warmup_steps {}", total_steps,
                             warmup_steps)};
  if (!(max_lr >= 0) || !(min_lr >= 0) || min_lr > max_lr)
    return Error{fmt::format(
        "lr schedule: needs 0 <= min_lr <= max_lr, got min_lr {} and max_lr {}", min_lr, max_lr)};
  return Status::Ok();
}

double LrSchedule::lr(int64_t step) const {
  if (step < 0) step = 0;
  if (step < warmup_steps)
    return max_lr * static_cast<double>(step + 1) / static_cast<double>(warmup_steps);
  if (step > total_steps) return min_lr;
  // total_steps == warmup_steps: the decay phase is one point, r = 0, max_lr.
  const int64_t span = total_steps - warmup_steps;
  const double r =
      span > 0 ? static_cast<double>(step - warmup_steps) / static_cast<double>(span) : 0.0;
  const double coeff = 0.5 * (1.0 + std::cos(std::numbers::pi * r));
  return min_lr + coeff * (max_lr - min_lr);
}

}  // namespace hanul
