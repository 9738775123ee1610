// The training metrics log (metrics.jsonl) and its loss plot (loss.svg), both
// written beside the checkpoints by `hanul train`.
//
// metrics.jsonl holds one JSON object per line, keys in this order, absent keys
// meaning "not measured at this step":
//   {"step":120,"tokens":983040,"train_loss":3.41,"val_loss":3.52,"lr":0.0006,
//    "grad_norm":0.83,"tokens_per_s":5120.5,"elapsed_s":192.0}
// JSON has no NaN or Infinity, so a non-finite measurement is written as null
// and read back as NaN: "the loss diverged at this step" stays distinguishable
// from "no loss measured at this step". Unknown keys are ignored on reading, so
// later versions may add fields.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "hanul/base/result.h"

namespace hanul {

struct MetricRecord {  // one line of metrics.jsonl
  int64_t step = 0;    // optimizer steps done when recorded (1-based after the first step)
  int64_t tokens = 0;  // training tokens seen so far (all ranks)
  std::optional<double> train_loss, val_loss, lr, grad_norm, tokens_per_s, elapsed_s;
};

// Appends records to a metrics.jsonl, one line per append(), each handed to the
// kernel before append() returns (and fsynced when asked), so a killed run loses
// at most the line being written.
class MetricsLog {
 public:
  // Opens PATH for appending, creating it when missing. The records of an
  // existing file with step <= keep_up_to_step are kept and the rest dropped,
  // so a run resumed from its step-N checkpoint passes N and continues the log
  // without duplicates; a fresh run passes -1 to start an empty log. A torn last
  // line (no newline, or not JSON) is dropped too. The kept lines are rewritten
  // to a temp file that is renamed over PATH, so a crash during open() leaves
  // the old log whole. fsync_each_line trades speed for durability against a
  // power cut (a killed process loses nothing written without it).
  static Result<MetricsLog> open(const std::string& path, int64_t keep_up_to_step,
                                 bool fsync_each_line = false);

  MetricsLog(MetricsLog&& other) noexcept;
  MetricsLog& operator=(MetricsLog&& other) noexcept;
  MetricsLog(const MetricsLog&) = delete;
  MetricsLog& operator=(const MetricsLog&) = delete;
  ~MetricsLog();

  Status append(const MetricRecord& r);
  // The kept records followed by the appended ones, in file order.
  const std::vector<MetricRecord>& records() const { return records_; }
  const std::string& path() const { return path_; }

 private:
  MetricsLog() = default;
  std::string path_;
  int fd_ = -1;
  bool fsync_ = false;
  std::vector<MetricRecord> records_;
};

// One record as its metrics.jsonl line, without the newline.
std::string metric_record_json(const MetricRecord& r);

// Reads a metrics.jsonl. Blank lines and a torn last line are skipped; any other
// line that is not a record is an error naming the file and line.
Result<std::vector<MetricRecord>> read_metrics(const std::string& path);

// Writes an SVG line chart of the training loss (thin line) and the validation
// loss (line with markers) against the step, each series from the records that
// have it; non-finite losses are left out. Axes carry 1/2/5 x 10^k ticks. The
// chart's data-to-pixel map is written on the plot area <g id="plot-area"> as
// data-x-min/-x-max/-y-min/-y-max (data units) and data-left/-top/-width/-height
// (pixels): px = left + (x - x_min) / (x_max - x_min) * width,
//           py = top + height - (y - y_min) / (y_max - y_min) * height.
// Written atomically (temp file + rename).
Status write_loss_plot_svg(const std::vector<MetricRecord>& records, const std::string& path,
                           const std::string& title);

// The SVG text itself, for callers that serve it rather than write it.
std::string loss_plot_svg(const std::vector<MetricRecord>& records, const std::string& title);

}  // namespace hanul
