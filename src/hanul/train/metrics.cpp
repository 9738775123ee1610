#include "hanul/train/metrics.h"

#include <fcntl.h>
#include <fmt/core.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <limits>
#include <nlohmann/json.hpp>
#include <string_view>
#include <utility>

#include "hanul/base/log.h"
#include "hanul/base/mapped_file.h"

namespace hanul {
namespace {

using ordered_json = nlohmann::ordered_json;

// The optional fields in file order; one list drives writing and reading.
struct OptionalField {
  const char* key;
  std::optional<double> MetricRecord::*member;
};
constexpr OptionalField kOptionalFields[] = {
    {"train_loss", &MetricRecord::train_loss},
    {"val_loss", &MetricRecord::val_loss},
    {"lr", &MetricRecord::lr},
    {"grad_norm", &MetricRecord::grad_norm},
    {"tokens_per_s", &MetricRecord::tokens_per_s},
    {"elapsed_s", &MetricRecord::elapsed_s},
};

Result<int64_t> integer_field(const ordered_json& j, const char* key, bool required) {
  auto it = j.find(key);
  if (it == j.end()) {
    if (required) return Error{fmt::format("no \"{}\"", key)};
    return int64_t{0};
  }
  if (it->is_number_integer()) return it->get<int64_t>();
  return Error{fmt::format("\"{}\" is {}, not an integer", key, it->dump())};
}

// The record of one line, or why the line is not one (the caller adds where).
Result<MetricRecord> parse_record(std::string_view line) {
  ordered_json j = ordered_json::parse(line, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return Error{"not JSON"};
  if (!j.is_object()) return Error{"not a JSON object"};
  MetricRecord r;
  HANUL_ASSIGN_OR_RETURN(r.step, integer_field(j, "step", true));
  HANUL_ASSIGN_OR_RETURN(r.tokens, integer_field(j, "tokens", false));
  for (const OptionalField& f : kOptionalFields) {
    auto it = j.find(f.key);
    if (it == j.end()) continue;
    if (it->is_null()) {
      r.*f.member = std::numeric_limits<double>::quiet_NaN();  // written for a non-finite value
    } else if (it->is_number()) {
      r.*f.member = it->get<double>();
    } else {
      return Error{fmt::format("\"{}\" is {}, not a number", f.key, it->dump())};
    }
  }
  return r;
}

struct ParsedLog {
  std::vector<MetricRecord> records;
  std::vector<std::string_view> lines;  // the text of each record, without its newline
  bool dropped_torn = false;
};

// Splits a metrics.jsonl into records. The last non-blank line may be torn by a
// killed writer: without its newline, or not a record, it is dropped; anywhere
// else a bad line is an error naming it.
Result<ParsedLog> parse_log(const std::string& text, const std::string& path) {
  struct Line {
    std::string_view text;
    int64_t number;
    bool has_newline;
  };
  std::vector<Line> lines;
  size_t pos = 0;
  for (int64_t number = 1; pos < text.size(); ++number) {
    size_t nl = text.find('\n', pos);
    const bool has_newline = nl != std::string::npos;
    if (!has_newline) nl = text.size();
    std::string_view line(text.data() + pos, nl - pos);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.find_first_not_of(" \t") != std::string_view::npos)
      lines.push_back({line, number, has_newline});
    pos = nl + 1;
  }
  ParsedLog log;
  for (size_t i = 0; i < lines.size(); ++i) {
    const bool last = i + 1 == lines.size();
    if (last && !lines[i].has_newline) {
      log.dropped_torn = true;
      break;
    }
    Result<MetricRecord> r = parse_record(lines[i].text);
    if (!r.ok()) {
      if (last) {
        log.dropped_torn = true;
        break;
      }
      return Error{
          fmt::format("metrics: {} line {}: {} (a metrics.jsonl line is one JSON object "
                      "with an integer \"step\"; fix or delete the line)",
                      path, lines[i].number, r.message())};
    }
    log.records.push_back(std::move(r).value());
    log.lines.push_back(lines[i].text);
  }
  return log;
}

Status write_all(int fd, const std::string& data, const std::string& path) {
  const char* p = data.data();
  size_t n = data.size();
  while (n > 0) {
    const ssize_t k = ::write(fd, p, n);
    if (k < 0) {
      if (errno == EINTR) continue;
      return Error{fmt::format("metrics: write to {} failed: {}", path, std::strerror(errno))};
    }
    p += k;
    n -= static_cast<size_t>(k);
  }
  return Status::Ok();
}

// ---- the loss plot ----

// Chart geometry in SVG pixels: the plot area is the frame inside the margins.
constexpr double kWidth = 800, kHeight = 450;
constexpr double kLeft = 72, kRight = 24, kTop = 52, kBottom = 58;
constexpr double kPlotW = kWidth - kLeft - kRight, kPlotH = kHeight - kTop - kBottom;
constexpr const char* kTrainColor = "#4c72b0";
constexpr const char* kValColor = "#dd8452";

struct Point {
  double x, y;
};

// One axis: the data range [lo, hi] snapped outwards to multiples of a tick step
// of 1, 2 or 5 x 10^k chosen for about `target` intervals (Heckbert, "Nice
// numbers for graph labels", Graphics Gems 1990, without its rounding of the range).
struct Axis {
  double lo = 0, hi = 1, step = 0.2;
  int64_t first = 0, count = 6;  // ticks are (first + i) * step, i < count
  double tick(int64_t i) const { return static_cast<double>(first + i) * step; }
};

double nice_step(double raw) {
  const double mag = std::pow(10.0, std::floor(std::log10(raw)));
  const double f = raw / mag;
  return (f <= 1.5 ? 1.0 : f <= 3.0 ? 2.0 : f <= 7.0 ? 5.0 : 10.0) * mag;
}

Axis make_axis(double lo, double hi, int target, double min_step) {
  if (!(hi > lo)) {  // one value (or none): give it a neighbourhood to sit in
    const double pad = std::max({std::abs(lo) * 0.05, min_step, 1e-3});
    lo -= pad;
    hi += pad;
  }
  Axis a;
  a.step = std::max(nice_step((hi - lo) / target), min_step);
  a.first = static_cast<int64_t>(std::floor(lo / a.step + 1e-9));
  const auto last = static_cast<int64_t>(std::ceil(hi / a.step - 1e-9));
  a.count = std::max<int64_t>(last - a.first, 1) + 1;
  a.lo = a.tick(0);
  a.hi = a.tick(a.count - 1);
  return a;
}

// A tick label with just the digits the step needs: 0.5 -> "0.5", 2000 -> "2k"
// when the axis runs past 10000.
std::string tick_label(double v, double step, bool thousands) {
  if (std::abs(v) < step * 1e-6) return "0";  // not "0k" or "-0.0"
  std::string suffix;
  if (thousands) {
    v /= 1000;
    step /= 1000;
    suffix = "k";
  }
  const int decimals = std::max(0, -static_cast<int>(std::floor(std::log10(step) + 1e-9)));
  return fmt::format("{:.{}f}{}", v, decimals, suffix);
}

std::string xml_escape(std::string_view s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      default:
        out.push_back(c);
    }
  }
  return out;
}

// A long run has far more steps than the plot has pixel columns; per column the
// first, lowest, highest and last points keep the drawn envelope of the curve
// exactly (the M4 reduction of Jugel et al., VLDB 2014) while the file stays small.
std::vector<Point> reduce_to_columns(const std::vector<Point>& pts, const Axis& x) {
  if (pts.size() <= static_cast<size_t>(4 * kPlotW)) return pts;
  std::vector<Point> out;
  size_t i = 0;
  while (i < pts.size()) {
    const auto column = [&](const Point& p) {
      return static_cast<int64_t>(std::floor((p.x - x.lo) / (x.hi - x.lo) * kPlotW));
    };
    const int64_t c = column(pts[i]);
    size_t j = i, lo = i, hi = i;
    for (; j < pts.size() && column(pts[j]) == c; ++j) {
      if (pts[j].y < pts[lo].y) lo = j;
      if (pts[j].y > pts[hi].y) hi = j;
    }
    size_t keep[4] = {i, std::min(lo, hi), std::max(lo, hi), j - 1};
    for (size_t k = 0; k < 4; ++k)
      if (k == 0 || keep[k] != keep[k - 1]) out.push_back(pts[keep[k]]);
    i = j;
  }
  return out;
}

}  // namespace

std::string loss_plot_svg(const std::vector<MetricRecord>& records, const std::string& title) {
  std::vector<Point> train, val;
  for (const MetricRecord& r : records) {
    const auto x = static_cast<double>(r.step);
    if (r.train_loss && std::isfinite(*r.train_loss)) train.push_back({x, *r.train_loss});
    if (r.val_loss && std::isfinite(*r.val_loss)) val.push_back({x, *r.val_loss});
  }
  // A resumed log is in step order already; sort anyway so a line never doubles back.
  const auto by_step = [](const Point& a, const Point& b) { return a.x < b.x; };
  std::stable_sort(train.begin(), train.end(), by_step);
  std::stable_sort(val.begin(), val.end(), by_step);

  double x_lo = std::numeric_limits<double>::infinity(), x_hi = -x_lo;
  double y_lo = x_lo, y_hi = -x_lo;
  for (const auto* series : {&train, &val}) {
    for (const Point& p : *series) {
      x_lo = std::min(x_lo, p.x);
      x_hi = std::max(x_hi, p.x);
      y_lo = std::min(y_lo, p.y);
      y_hi = std::max(y_hi, p.y);
    }
  }
  const bool empty = train.empty() && val.empty();
  if (empty) x_lo = 0, x_hi = 1, y_lo = 0, y_hi = 1;
  const Axis x = make_axis(x_lo, x_hi, 8, /*min_step=*/1);  // steps are integers
  // A little headroom, so no point sits on the frame (a loss never goes below 0).
  const double y_pad = 0.04 * (y_hi - y_lo);
  const Axis y =
      make_axis(y_lo >= 0 ? std::max(0.0, y_lo - y_pad) : y_lo - y_pad, y_hi + y_pad, 6, 0);
  const auto px = [&](double v) { return kLeft + (v - x.lo) / (x.hi - x.lo) * kPlotW; };
  const auto py = [&](double v) { return kTop + kPlotH - (v - y.lo) / (y.hi - y.lo) * kPlotH; };

  std::string s;
  s += fmt::format(
      "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{0}\" height=\"{1}\" "
      "viewBox=\"0 0 {0} {1}\" font-family=\"Helvetica, Arial, sans-serif\" font-size=\"12\">\n",
      kWidth, kHeight);
  s += fmt::format("<title>{}</title>\n", xml_escape(title));
  s += "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n";
  s += fmt::format(
      "<text class=\"chart-title\" x=\"{}\" y=\"31\" font-size=\"16\" font-weight=\"bold\" "
      "fill=\"#222\">{}</text>\n",
      kLeft, xml_escape(title));
  s += fmt::format(
      "<g id=\"plot-area\" data-x-min=\"{}\" data-x-max=\"{}\" data-y-min=\"{}\" data-y-max=\"{}\" "
      "data-left=\"{}\" data-top=\"{}\" data-width=\"{}\" data-height=\"{}\">\n",
      x.lo, x.hi, y.lo, y.hi, kLeft, kTop, kPlotW, kPlotH);

  // Grid and ticks: light lines across the plot, labels outside the frame.
  const bool thousands = x.hi >= 10000 && x.step >= 1000;
  s += "<g class=\"x-ticks\" text-anchor=\"middle\" fill=\"#444\">\n";
  for (int64_t i = 0; i < x.count; ++i) {
    const double v = x.tick(i), p = px(v);
    s += fmt::format(
        "<g class=\"tick\" data-value=\"{}\"><line x1=\"{:.2f}\" y1=\"{}\" x2=\"{:.2f}\" y2=\"{}\" "
        "stroke=\"#e5e5e5\"/><line x1=\"{:.2f}\" y1=\"{}\" x2=\"{:.2f}\" y2=\"{}\" "
        "stroke=\"#888\"/>"
        "<text x=\"{:.2f}\" y=\"{}\">{}</text></g>\n",
        v, p, kTop, p, kTop + kPlotH, p, kTop + kPlotH, p, kTop + kPlotH + 5, p, kTop + kPlotH + 19,
        tick_label(v, x.step, thousands));
  }
  s += "</g>\n<g class=\"y-ticks\" text-anchor=\"end\" fill=\"#444\">\n";
  for (int64_t i = 0; i < y.count; ++i) {
    const double v = y.tick(i), p = py(v);
    s += fmt::format(
        "<g class=\"tick\" data-value=\"{}\"><line x1=\"{}\" y1=\"{:.2f}\" x2=\"{}\" y2=\"{:.2f}\" "
        "stroke=\"#e5e5e5\"/><line x1=\"{}\" y1=\"{:.2f}\" x2=\"{}\" y2=\"{:.2f}\" "
        "stroke=\"#888\"/>"
        "<text x=\"{}\" y=\"{:.2f}\">{}</text></g>\n",
        v, kLeft, p, kLeft + kPlotW, p, kLeft - 5, p, kLeft, p, kLeft - 8, p + 4,
        tick_label(v, y.step, false));
  }
  s += "</g>\n";
  s += fmt::format(
      "<rect class=\"frame\" x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" fill=\"none\" "
      "stroke=\"#888\"/>\n",
      kLeft, kTop, kPlotW, kPlotH);

  const auto polyline = [&](const std::vector<Point>& pts, const char* color, double width) {
    std::string out = fmt::format(
        "<polyline fill=\"none\" stroke=\"{}\" stroke-width=\"{}\" stroke-linejoin=\"round\" "
        "stroke-linecap=\"round\" points=\"",
        color, width);
    for (size_t i = 0; i < pts.size(); ++i)
      out += fmt::format("{}{:.2f},{:.2f}", i ? " " : "", px(pts[i].x), py(pts[i].y));
    return out + "\"/>\n";
  };
  if (!train.empty()) {
    s += "<g class=\"series\" id=\"train-loss\" data-series=\"train_loss\">\n";
    s += polyline(reduce_to_columns(train, x), kTrainColor, 1.2);
    if (train.size() == 1)  // a one-vertex polyline draws nothing
      s += fmt::format(
          "<circle class=\"marker\" cx=\"{:.2f}\" cy=\"{:.2f}\" r=\"2.5\" fill=\"{}\"/>\n",
          px(train[0].x), py(train[0].y), kTrainColor);
    s += "</g>\n";
  }
  if (!val.empty()) {
    s += "<g class=\"series\" id=\"val-loss\" data-series=\"val_loss\">\n";
    s += polyline(val, kValColor, 2);
    // Markers only while they stay about 10 px apart; more would be a thick smear.
    if (static_cast<double>(val.size()) <= kPlotW / 10) {
      for (const Point& p : val)
        s += fmt::format(
            "<circle class=\"marker\" cx=\"{:.2f}\" cy=\"{:.2f}\" r=\"3.5\" fill=\"{}\" "
            "stroke=\"white\" stroke-width=\"1\"/>\n",
            px(p.x), py(p.y), kValColor);
    }
    s += "</g>\n";
  }
  if (empty)
    s += fmt::format(
        "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\" fill=\"#888\">no loss recorded "
        "yet</text>\n",
        kLeft + kPlotW / 2, kTop + kPlotH / 2);
  s += "</g>\n";

  // Axis titles.
  s += fmt::format(
      "<text class=\"axis-label\" x=\"{}\" y=\"{}\" text-anchor=\"middle\" "
      "fill=\"#222\">step</text>\n",
      kLeft + kPlotW / 2, kHeight - 14);
  s += fmt::format(
      "<text class=\"axis-label\" transform=\"translate(18 {}) rotate(-90)\" "
      "text-anchor=\"middle\" "
      "fill=\"#222\">loss</text>\n",
      kTop + kPlotH / 2);

  // Legend on the header line, right-aligned, so it never hides a point.
  const double lx = kLeft + kPlotW - 232, ly = 26;
  s += "<g class=\"legend\" fill=\"#222\">\n";
  s += fmt::format(
      "<g class=\"legend-entry\" data-series=\"train_loss\"><line x1=\"{}\" y1=\"{}\" x2=\"{}\" "
      "y2=\"{}\" stroke=\"{}\" stroke-width=\"1.5\"/><text x=\"{}\" y=\"{}\">train "
      "loss</text></g>\n",
      lx, ly, lx + 24, ly, kTrainColor, lx + 30, ly + 4);
  s += fmt::format(
      "<g class=\"legend-entry\" data-series=\"val_loss\"><line x1=\"{}\" y1=\"{}\" x2=\"{}\" "
      "y2=\"{}\" stroke=\"{}\" stroke-width=\"2\"/><circle cx=\"{}\" cy=\"{}\" r=\"3.5\" "
      "fill=\"{}\" stroke=\"white\" stroke-width=\"1\"/><text x=\"{}\" y=\"{}\">validation "
      "loss</text></g>\n",
      lx + 104, ly, lx + 128, ly, kValColor, lx + 116, ly, kValColor, lx + 134, ly + 4);
  s += "</g>\n</svg>\n";
  return s;
}

Status write_loss_plot_svg(const std::vector<MetricRecord>& records, const std::string& path,
                           const std::string& title) {
  Status st = write_file_atomic(path, loss_plot_svg(records, title));
  if (!st.ok()) return Error{fmt::format("loss plot: {}", st.message())};
  return Status::Ok();
}

std::string metric_record_json(const MetricRecord& r) {
  ordered_json j;
  j["step"] = r.step;
  j["tokens"] = r.tokens;
  for (const OptionalField& f : kOptionalFields) {
    const std::optional<double>& v = r.*f.member;
    if (!v) continue;
    if (std::isfinite(*v)) {
      j[f.key] = *v;
    } else {
      j[f.key] = nullptr;  // JSON has no NaN/Infinity (RFC 8259 section 6)
    }
  }
  return j.dump();  // nlohmann prints doubles with the shortest round-trip digits
}

Result<std::vector<MetricRecord>> read_metrics(const std::string& path) {
  HANUL_ASSIGN_OR_RETURN(std::string text, read_text_file(path));
  HANUL_ASSIGN_OR_RETURN(ParsedLog log, parse_log(text, path));
  return std::move(log.records);
}

Result<MetricsLog> MetricsLog::open(const std::string& path, int64_t keep_up_to_step,
                                    bool fsync_each_line) {
  MetricsLog log;
  log.path_ = path;
  log.fsync_ = fsync_each_line;
  std::string kept;
  if (::access(path.c_str(), F_OK) == 0) {
    HANUL_ASSIGN_OR_RETURN(std::string text, read_text_file(path));
    HANUL_ASSIGN_OR_RETURN(ParsedLog old, parse_log(text, path));
    if (old.dropped_torn) log_warn("metrics: {}: dropped a torn last line", path);
    size_t dropped = 0;
    for (size_t i = 0; i < old.records.size(); ++i) {
      if (old.records[i].step > keep_up_to_step) {
        ++dropped;
        continue;
      }
      kept.append(old.lines[i]);  // the original text, so unknown keys survive
      kept.push_back('\n');
      log.records_.push_back(old.records[i]);
    }
    if (dropped > 0)
      log_info("metrics: {}: dropped {} records after step {}", path, dropped, keep_up_to_step);
  }
  HANUL_TRY(write_file_atomic(path, kept));
  log.fd_ = ::open(path.c_str(), O_WRONLY | O_APPEND | O_CLOEXEC);
  if (log.fd_ < 0)
    return Error{
        fmt::format("metrics: cannot open {} for appending: {}", path, std::strerror(errno))};
  return log;
}

MetricsLog::MetricsLog(MetricsLog&& other) noexcept
    : path_(std::move(other.path_)),
      fd_(std::exchange(other.fd_, -1)),
      fsync_(other.fsync_),
      records_(std::move(other.records_)) {}

MetricsLog& MetricsLog::operator=(MetricsLog&& other) noexcept {
  if (this != &other) {
    if (fd_ >= 0) ::close(fd_);
    path_ = std::move(other.path_);
    fd_ = std::exchange(other.fd_, -1);
    fsync_ = other.fsync_;
    records_ = std::move(other.records_);
  }
  return *this;
}

MetricsLog::~MetricsLog() {
  if (fd_ >= 0) ::close(fd_);
}

Status MetricsLog::append(const MetricRecord& r) {
  // One write() of the whole line: with O_APPEND the kernel places it at the end
  // in one piece, and it survives the process being killed right after.
  std::string line = metric_record_json(r);
  line.push_back('\n');
  HANUL_TRY(write_all(fd_, line, path_));
  if (fsync_ && ::fsync(fd_) != 0)
    return Error{fmt::format("metrics: fsync of {} failed: {}", path_, std::strerror(errno))};
  records_.push_back(r);
  return Status::Ok();
}

}  // namespace hanul
