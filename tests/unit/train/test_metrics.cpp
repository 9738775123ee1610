#include <gtest/gtest.h>

#include "temp_dir.h"
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>
#include <sstream>

#include "hanul/base/mapped_file.h"
#include "hanul/train/metrics.h"

namespace hanul {
namespace {

namespace fs = std::filesystem;


std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void spit(const std::string& path, const std::string& text) {
  std::ofstream(path, std::ios::binary) << text;
}

MetricRecord rec(int64_t step, std::optional<double> train, std::optional<double> val = {}) {
  MetricRecord r;
  r.step = step;
  r.tokens = step * 4096;
  r.train_loss = train;
  r.val_loss = val;
  return r;
}

void expect_same(const MetricRecord& a, const MetricRecord& b) {
  EXPECT_EQ(a.step, b.step);
  EXPECT_EQ(a.tokens, b.tokens);
  for (auto m : {&MetricRecord::train_loss, &MetricRecord::val_loss, &MetricRecord::lr,
                 &MetricRecord::grad_norm, &MetricRecord::tokens_per_s, &MetricRecord::elapsed_s}) {
    ASSERT_EQ((a.*m).has_value(), (b.*m).has_value()) << "step " << a.step;
    if ((a.*m) && std::isnan(*(a.*m))) {
      EXPECT_TRUE(std::isnan(*(b.*m)));
    } else if (a.*m) {
      EXPECT_EQ(*(a.*m), *(b.*m)) << "step " << a.step;  // exact: shortest round-trip digits
    }
  }
}

size_t count_lines(const std::string& text) { return std::count(text.begin(), text.end(), '\n'); }

TEST(Metrics, RoundTripThroughLogAndReader) {
  TempDir dir("hanul_metrics");
  const std::string path = dir.file("metrics.jsonl");
  std::vector<MetricRecord> written;
  MetricRecord a = rec(1, 10.375);
  a.lr = 1e-7;
  a.grad_norm = 3.141592653589793;
  a.tokens_per_s = 12345.678;
  a.elapsed_s = 0.1;
  written.push_back(a);
  written.push_back(rec(2, 9.9, 9.95));
  MetricRecord only_val;  // an evaluation before the first step: no train loss
  only_val.step = 3;
  only_val.tokens = int64_t{1} << 40;
  only_val.val_loss = 2.0 / 3.0;
  written.push_back(only_val);
  {
    auto log = MetricsLog::open(path, -1);
    ASSERT_TRUE(log.ok()) << log.message();
    for (const auto& r : written) ASSERT_TRUE(log->append(r).ok());
    ASSERT_EQ(log->records().size(), written.size());
    for (size_t i = 0; i < written.size(); ++i) expect_same(written[i], log->records()[i]);
    // Each append reaches the file before it returns, with the log still open.
    auto now = read_metrics(path);
    ASSERT_TRUE(now.ok()) << now.message();
    EXPECT_EQ(now->size(), written.size());
  }
  const std::string text = slurp(path);
  EXPECT_EQ(count_lines(text), 3u);
  EXPECT_EQ(
      text.substr(0, text.find('\n')),
      R"({"step":1,"tokens":4096,"train_loss":10.375,"lr":1e-07,"grad_norm":3.141592653589793,)"
      R"("tokens_per_s":12345.678,"elapsed_s":0.1})");
  EXPECT_EQ(text.find("train_loss", text.rfind("\"step\":3")),
            std::string::npos);  // absent, not null
  auto back = read_metrics(path);
  ASSERT_TRUE(back.ok()) << back.message();
  ASSERT_EQ(back->size(), written.size());
  for (size_t i = 0; i < written.size(); ++i) expect_same(written[i], (*back)[i]);
}

TEST(Metrics, ResumeKeepsRecordsUpToTheCheckpointStep) {
  TempDir dir("hanul_metrics");
  const std::string path = dir.file("metrics.jsonl");
  {
    auto log = MetricsLog::open(path, -1);
    ASSERT_TRUE(log.ok()) << log.message();
    for (int64_t s = 1; s <= 10; ++s) ASSERT_TRUE(log->append(rec(s, 5.0 - 0.1 * s)).ok());
  }
  // The run died after step 10; its last checkpoint was at step 6.
  {
    auto log = MetricsLog::open(path, 6);
    ASSERT_TRUE(log.ok()) << log.message();
    ASSERT_EQ(log->records().size(), 6u);
    EXPECT_EQ(log->records().back().step, 6);
    EXPECT_EQ(count_lines(slurp(path)), 6u);
    for (int64_t s = 7; s <= 8; ++s) ASSERT_TRUE(log->append(rec(s, 1.0)).ok());
  }
  auto back = read_metrics(path);
  ASSERT_TRUE(back.ok()) << back.message();
  ASSERT_EQ(back->size(), 8u);
  for (size_t i = 0; i < back->size(); ++i) EXPECT_EQ((*back)[i].step, static_cast<int64_t>(i + 1));
  EXPECT_DOUBLE_EQ(*(*back)[5].train_loss, 5.0 - 0.6);  // kept from the first run
  EXPECT_EQ(*(*back)[6].train_loss, 1.0);               // written by the resumed one
  // No temp file is left beside the log.
  size_t files = 0;
  for (const auto& e : fs::directory_iterator(dir.path)) files += e.is_regular_file();
  EXPECT_EQ(files, 1u);

  // A fresh run (-1) starts an empty log, step-0 records included.
  spit(path, R"({"step":0,"tokens":0,"val_loss":11.0})"
             "\n"
             R"({"step":1,"tokens":8})"
             "\n");
  auto fresh = MetricsLog::open(path, -1);
  ASSERT_TRUE(fresh.ok()) << fresh.message();
  EXPECT_TRUE(fresh->records().empty());
  EXPECT_EQ(slurp(path), "");
}

TEST(Metrics, ResumeKeepsUnknownKeysOfKeptLines) {
  TempDir dir("hanul_metrics");
  const std::string path = dir.file("metrics.jsonl");
  spit(path, R"({"step":1,"tokens":8,"train_loss":3.5,"future_field":[1,2]})"
             "\n"
             R"({"step":2,"tokens":16,"train_loss":3.25})"
             "\n");
  auto log = MetricsLog::open(path, 1);
  ASSERT_TRUE(log.ok()) << log.message();
  EXPECT_EQ(slurp(path), R"({"step":1,"tokens":8,"train_loss":3.5,"future_field":[1,2]})"
                         "\n");
}

TEST(Metrics, TornLastLineIsDropped) {
  TempDir dir("hanul_metrics");
  const std::string path = dir.file("metrics.jsonl");
  const std::string good = R"({"step":1,"tokens":8,"train_loss":3.5})"
                           "\n"
                           R"({"step":2,"tokens":16,"train_loss":3.25})"
                           "\n";
  // Killed in the middle of a line: no newline.
  spit(path, good + R"({"step":3,"tokens":24,"train_lo)");
  auto r = read_metrics(path);
  ASSERT_TRUE(r.ok()) << r.message();
  EXPECT_EQ(r->size(), 2u);
  // Even a line that parses is torn without its newline: the write did not finish.
  spit(path, good + R"({"step":3,"tokens":24})");
  r = read_metrics(path);
  ASSERT_TRUE(r.ok()) << r.message();
  EXPECT_EQ(r->size(), 2u);
  // A last line of garbage (a crash can leave zeros), with a blank line after it.
  spit(path, good + std::string(7, '\0') + "\n\n");
  r = read_metrics(path);
  ASSERT_TRUE(r.ok()) << r.message();
  EXPECT_EQ(r->size(), 2u);

  // open() drops it from the file, so the next append starts on a line of its own.
  spit(path, good + R"({"step":3,"tok)");
  auto log = MetricsLog::open(path, 100);
  ASSERT_TRUE(log.ok()) << log.message();
  EXPECT_EQ(log->records().size(), 2u);
  EXPECT_EQ(slurp(path), good);
  ASSERT_TRUE(log->append(rec(3, 3.0)).ok());
  r = read_metrics(path);
  ASSERT_TRUE(r.ok()) << r.message();
  ASSERT_EQ(r->size(), 3u);
  EXPECT_EQ(r->back().step, 3);
}

TEST(Metrics, BadLinesAreErrorsThatNameTheLine) {
  TempDir dir("hanul_metrics");
  const std::string path = dir.file("metrics.jsonl");
  const std::string last = R"({"step":9,"tokens":8})"
                           "\n";
  const std::pair<std::string, std::string> cases[] = {
      {"{\"step\":1,\"tokens\":8}\n\nnot json\n", "line 3: not JSON"},
      {"{\"step\":1,\"tokens\":8}\n[1,2]\n", "line 2: not a JSON object"},
      {"{\"tokens\":8}\n", "line 1: no \"step\""},
      {"{\"step\":1.5}\n", "line 1: \"step\" is 1.5, not an integer"},
      {"{\"step\":1,\"train_loss\":\"high\"}\n",
       "line 1: \"train_loss\" is \"high\", not a number"},
  };
  for (const auto& [text, want] : cases) {
    spit(path, text + last);  // a good last line: the bad one is not the torn tail
    auto r = read_metrics(path);
    ASSERT_FALSE(r.ok()) << text;
    EXPECT_NE(r.message().find(path + " " + want), std::string::npos) << r.message();
    auto log = MetricsLog::open(path, 100);  // a resumed run refuses too, file untouched
    ASSERT_FALSE(log.ok());
    EXPECT_EQ(slurp(path), text + last);
  }
  auto missing = read_metrics(dir.file("nope.jsonl"));
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.message().find("nope.jsonl"), std::string::npos);
  EXPECT_FALSE(MetricsLog::open(dir.file("no/such/dir/metrics.jsonl"), -1).ok());
}

TEST(Metrics, NonFiniteValuesAreNullInTheFileAndNaNInMemory) {
  TempDir dir("hanul_metrics");
  const std::string path = dir.file("metrics.jsonl");
  auto log = MetricsLog::open(path, -1, /*fsync_each_line=*/true);
  ASSERT_TRUE(log.ok()) << log.message();
  MetricRecord r = rec(1, std::numeric_limits<double>::quiet_NaN());
  r.grad_norm = std::numeric_limits<double>::infinity();
  ASSERT_TRUE(log->append(r).ok());
  EXPECT_EQ(slurp(path), R"({"step":1,"tokens":4096,"train_loss":null,"grad_norm":null})"
                         "\n");
  auto back = read_metrics(path);
  ASSERT_TRUE(back.ok()) << back.message();
  ASSERT_EQ(back->size(), 1u);
  ASSERT_TRUE((*back)[0].train_loss.has_value());
  EXPECT_TRUE(std::isnan(*(*back)[0].train_loss));
  EXPECT_FALSE((*back)[0].val_loss.has_value());
}

// ---- the plot ----

struct Chart {
  double x_min, x_max, y_min, y_max, left, top, width, height;
  std::vector<std::pair<double, double>> train, val;  // polyline points, pixels
  std::vector<double> x_ticks, y_ticks;
};

// Plain string search, not std::regex: libstdc++'s regex recurses per character
// and overflows the stack on a polyline of thousands of points.
std::string quoted_after(const std::string& svg, size_t from, const std::string& name) {
  const size_t at = svg.find(name + "=\"", from);
  if (at == std::string::npos) return "";
  const size_t begin = at + name.size() + 2;
  return svg.substr(begin, svg.find('"', begin) - begin);
}

double attr(const std::string& svg, const std::string& name) {
  const std::string v = quoted_after(svg, 0, name);
  EXPECT_FALSE(v.empty()) << name;
  return v.empty() ? std::nan("") : std::stod(v);
}

std::vector<std::pair<double, double>> points(const std::string& svg, const std::string& id) {
  std::vector<std::pair<double, double>> out;
  const size_t g = svg.find("id=\"" + id + "\"");
  if (g == std::string::npos) return out;
  std::istringstream in(quoted_after(svg, svg.find("<polyline", g), "points"));
  std::string xy;
  while (in >> xy) {
    const size_t comma = xy.find(',');
    out.emplace_back(std::stod(xy.substr(0, comma)), std::stod(xy.substr(comma + 1)));
  }
  return out;
}

std::vector<double> ticks(const std::string& svg, const std::string& axis) {
  std::vector<double> out;
  const size_t begin = svg.find("class=\"" + axis + "\"");
  const size_t end = svg.find("\n</g>", begin);
  for (size_t at = svg.find("data-value=", begin); at < end; at = svg.find("data-value=", at + 1))
    out.push_back(std::stod(quoted_after(svg, at, "data-value")));
  return out;
}

Chart parse_chart(const std::string& svg) {
  Chart c;
  c.x_min = attr(svg, "data-x-min");
  c.x_max = attr(svg, "data-x-max");
  c.y_min = attr(svg, "data-y-min");
  c.y_max = attr(svg, "data-y-max");
  c.left = attr(svg, "data-left");
  c.top = attr(svg, "data-top");
  c.width = attr(svg, "data-width");
  c.height = attr(svg, "data-height");
  c.train = points(svg, "train-loss");
  c.val = points(svg, "val-loss");
  c.x_ticks = ticks(svg, "x-ticks");
  c.y_ticks = ticks(svg, "y-ticks");
  return c;
}

// The tick spacing is 1, 2 or 5 x 10^k and the ticks span the axis exactly.
void expect_nice(const std::vector<double>& t, double lo, double hi) {
  ASSERT_GE(t.size(), 2u);
  EXPECT_DOUBLE_EQ(t.front(), lo);
  EXPECT_DOUBLE_EQ(t.back(), hi);
  const double step = t[1] - t[0];
  const double mantissa = step / std::pow(10.0, std::floor(std::log10(step) + 1e-9));
  EXPECT_TRUE(std::abs(mantissa - 1) < 1e-6 || std::abs(mantissa - 2) < 1e-6 ||
              std::abs(mantissa - 5) < 1e-6)
      << step;
  for (size_t i = 1; i < t.size(); ++i) EXPECT_NEAR(t[i] - t[i - 1], step, step * 1e-9);
  EXPECT_LE(t.size(), 13u);
}

void expect_no_nonfinite_text(const std::string& svg) {
  for (const char* bad : {"nan", "inf", "NaN", "Inf"})
    EXPECT_EQ(svg.find(bad), std::string::npos) << bad;
}

TEST(LossPlot, NoPointsDrawsEmptyAxes) {
  for (const auto& records : {std::vector<MetricRecord>{}, std::vector<MetricRecord>{rec(5, {})}}) {
    const std::string svg = loss_plot_svg(records, "empty");
    expect_no_nonfinite_text(svg);
    EXPECT_NE(svg.find("no loss recorded yet"), std::string::npos);
    EXPECT_EQ(svg.find("class=\"series\""), std::string::npos);
    Chart c = parse_chart(svg);
    EXPECT_LT(c.x_min, c.x_max);
    EXPECT_LT(c.y_min, c.y_max);
  }
}

TEST(LossPlot, OnePointSitsInsideTheAxes) {
  const std::string svg = loss_plot_svg({rec(7, 2.5, 2.5)}, "one");
  expect_no_nonfinite_text(svg);
  Chart c = parse_chart(svg);
  ASSERT_EQ(c.train.size(), 1u);
  ASSERT_EQ(c.val.size(), 1u);
  EXPECT_LT(c.x_min, 7);
  EXPECT_GT(c.x_max, 7);
  EXPECT_LT(c.y_min, 2.5);
  EXPECT_GT(c.y_max, 2.5);
  const double px = c.left + (7 - c.x_min) / (c.x_max - c.x_min) * c.width;
  const double py = c.top + c.height - (2.5 - c.y_min) / (c.y_max - c.y_min) * c.height;
  EXPECT_NEAR(c.train[0].first, px, 0.01);
  EXPECT_NEAR(c.train[0].second, py, 0.01);
  expect_nice(c.x_ticks, c.x_min, c.x_max);
  expect_nice(c.y_ticks, c.y_min, c.y_max);
  // Steps are integers: no tick at step 6.5.
  for (double t : c.x_ticks) EXPECT_EQ(t, std::round(t));
}

TEST(LossPlot, ThousandPointsMapBackToTheirRecords) {
  std::vector<MetricRecord> records;
  for (int64_t s = 1; s <= 1000; ++s) {
    std::optional<double> val;
    if (s % 100 == 0) val = 2.0 + 8.0 * std::exp(-s / 200.0);
    records.push_back(rec(s, 2.0 + 8.0 * std::exp(-s / 150.0) + 0.1 * std::sin(s * 0.7), val));
  }
  records[500].train_loss = std::numeric_limits<double>::quiet_NaN();  // diverged once: left out
  records[600].train_loss = std::numeric_limits<double>::infinity();
  const std::string svg = loss_plot_svg(records, "a <1000> step & run");
  expect_no_nonfinite_text(svg);
  EXPECT_NE(svg.find("a &lt;1000&gt; step &amp; run"), std::string::npos);
  Chart c = parse_chart(svg);
  ASSERT_EQ(c.train.size(), 998u);
  ASSERT_EQ(c.val.size(), 10u);
  expect_nice(c.x_ticks, c.x_min, c.x_max);
  expect_nice(c.y_ticks, c.y_min, c.y_max);
  size_t k = 0;
  for (const MetricRecord& r : records) {
    if (!std::isfinite(*r.train_loss)) continue;
    const auto [px, py] = c.train[k++];
    EXPECT_NEAR(c.x_min + (px - c.left) / c.width * (c.x_max - c.x_min), r.step,
                (c.x_max - c.x_min) / c.width);  // within a pixel
    EXPECT_NEAR(c.y_min + (c.top + c.height - py) / c.height * (c.y_max - c.y_min), *r.train_loss,
                (c.y_max - c.y_min) / c.height);
    EXPECT_GE(px, c.left);
    EXPECT_LE(px, c.left + c.width);
    EXPECT_GE(py, c.top);
    EXPECT_LE(py, c.top + c.height);
  }
}

TEST(LossPlot, LongRunsKeepTheEnvelopeInFewPoints) {
  std::vector<MetricRecord> records;
  for (int64_t s = 1; s <= 100000; ++s) records.push_back(rec(s, 3.0 + std::sin(s * 0.37)));
  records[54321].train_loss = 9.0;  // a spike must survive the reduction
  const std::string svg = loss_plot_svg(records, "long");
  Chart c = parse_chart(svg);
  EXPECT_LE(c.train.size(), static_cast<size_t>(4 * (c.width + 1)));
  EXPECT_GT(c.train.size(), static_cast<size_t>(c.width));
  double top_px = 1e9;
  for (const auto& p : c.train) top_px = std::min(top_px, p.second);
  EXPECT_NEAR(top_px, c.top + c.height - (9.0 - c.y_min) / (c.y_max - c.y_min) * c.height, 0.01);
  EXPECT_LT(svg.size(), 200000u);
}

TEST(LossPlot, WritesTheFileAtomically) {
  TempDir dir("hanul_metrics");
  const std::string path = dir.file("loss.svg");
  ASSERT_TRUE(write_loss_plot_svg({rec(1, 3.0), rec(2, 2.5)}, path, "t").ok());
  EXPECT_EQ(slurp(path), loss_plot_svg({rec(1, 3.0), rec(2, 2.5)}, "t"));
  size_t files = 0;
  for (const auto& e : fs::directory_iterator(dir.path)) files += e.is_regular_file();
  EXPECT_EQ(files, 1u);
  Status st = write_loss_plot_svg({}, dir.file("no/dir/loss.svg"), "t");
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.message().find("loss plot"), std::string::npos);
}

}  // namespace
}  // namespace hanul
