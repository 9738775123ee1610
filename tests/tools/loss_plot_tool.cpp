// loss_plot_tool: the bridge from tests/reference/check_loss_plot.py to
// train/metrics.h. It reads a metrics.jsonl with read_metrics() and writes the
// loss chart with write_loss_plot_svg():
//   loss_plot_tool METRICS.jsonl OUT.svg [TITLE]
// With --log it first copies the records through MetricsLog (open + append) into
// METRICS.jsonl.copy and plots what that log read back, so the script also
// checks the writer's lines.
#include <cstdio>
#include <string>

#include "hanul/train/metrics.h"

int main(int argc, char** argv) {
  bool through_log = false;
  std::string args[3];
  int n = 0;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--log") {
      through_log = true;
    } else if (n < 3) {
      args[n++] = a;
    }
  }
  if (n < 2) {
    std::fprintf(stderr, "usage: loss_plot_tool [--log] METRICS.jsonl OUT.svg [TITLE]\n");
    return 2;
  }
  auto records = hanul::read_metrics(args[0]);
  if (!records.ok()) {
    std::fprintf(stderr, "loss_plot_tool: %s\n", records.message().c_str());
    return 1;
  }
  if (through_log) {
    const std::string copy = args[0] + ".copy";
    auto log = hanul::MetricsLog::open(copy, -1);
    if (!log.ok()) {
      std::fprintf(stderr, "loss_plot_tool: %s\n", log.message().c_str());
      return 1;
    }
    for (const auto& r : *records) {
      hanul::Status st = log->append(r);
      if (!st.ok()) {
        std::fprintf(stderr, "loss_plot_tool: %s\n", st.message().c_str());
        return 1;
      }
    }
    records = hanul::read_metrics(copy);
    if (!records.ok()) {
      std::fprintf(stderr, "loss_plot_tool: %s\n", records.message().c_str());
      return 1;
    }
  }
  hanul::Status st = hanul::write_loss_plot_svg(*records, args[1], n > 2 ? args[2] : "loss");
  if (!st.ok()) {
    std::fprintf(stderr, "loss_plot_tool: %s\n", st.message().c_str());
    return 1;
  }
  return 0;
}
