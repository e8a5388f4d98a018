// `pactq report`: the chart maths, the HTML it writes for one and several
// runs, damaged run directories, and the page as a browser renders it
// (headless Chromium screenshot, skipped when /usr/bin/chromium is absent).
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <nlohmann/json.hpp>

#include <chrono>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "pactq/data/image_codec.h"
#include "pactq/report/report.h"
#include "pactq/report/svg_chart.h"
#include "pactq/train/config.h"
#include "pactq/train/metrics_log.h"
#include "test_env.h"

namespace fs = std::filesystem;
using pactq::report::LineChart;
using pactq::report::nice_ticks;
using pactq::report::Series;

namespace {
const std::string kExe = std::string(PACTQ_BINARY_DIR) + "/pactq";
using pactq::test::kChromium;

std::string temp_dir() {
  std::string pattern = (fs::temp_directory_path() / "pactq_report_XXXXXX").string();
  return mkdtemp(pattern.data());
}

std::string read_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::ostringstream s;
  s << f.rdbuf();
  return s.str();
}

// Runs `pactq ARGS`; stderr goes to *err when given.
int run_pactq(const std::string& args, std::string* err = nullptr,
              const std::string& tmp = "/tmp") {
  const std::string err_path = tmp + "/stderr.txt";
  const int rc = std::system((kExe + " " + args + " >/dev/null 2>" + err_path).c_str());
  if (err != nullptr) *err = read_file(err_path);
  return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

size_t count(const std::string& text, const std::string& needle) {
  size_t n = 0;
  for (size_t pos = text.find(needle); pos != std::string::npos;
       pos = text.find(needle, pos + needle.size()))
    ++n;
  return n;
}

// The data-series names in the page whose name starts with prefix.
std::multiset<std::string> series_ids(const std::string& html, const std::string& prefix) {
  std::multiset<std::string> ids;
  const std::regex re("data-series=\"([^\"]*)\"");
  for (auto it = std::sregex_iterator(html.begin(), html.end(), re); it != std::sregex_iterator();
       ++it) {
    const std::string id = (*it)[1];
    if (id.rfind(prefix, 0) == 0) ids.insert(id);
  }
  return ids;
}

// The alpha:* keys in a metrics.jsonl, read independently of the report code.
std::set<std::string> alpha_keys_in(const std::string& jsonl) {
  std::set<std::string> keys;
  std::istringstream lines(read_file(jsonl));
  std::string line;
  while (std::getline(lines, line)) {
    const auto row = nlohmann::json::parse(line, nullptr, false);
    if (row.is_discarded()) continue;
    for (const auto& item : row.items())
      if (item.key().rfind("alpha:", 0) == 0) keys.insert(item.key());
  }
  return keys;
}

std::vector<std::string> resnet20_alpha_layers() {
  std::vector<std::string> names;
  for (int stage = 1; stage <= 3; ++stage)
    for (int block = 0; block < 3; ++block)
      for (int act = 1; act <= 2; ++act)
        names.push_back("layer" + std::to_string(stage) + "." + std::to_string(block) + ".act" +
                        std::to_string(act));
  names.push_back("act0");
  return names;  // 19 learned alphas, named like the zoo's resnet20
}

struct FakeRun {
  std::string wbits = "4", abits = "4";
  int epochs = 6;
  std::vector<std::string> alpha_layers = resnet20_alpha_layers();
  bool deployed = false;  // test_top1_deployed (newer runs)
  bool val = false;       // val_loss, val_top1, val_top1_deployed
  double top1_offset = 0;
};

// A run directory written the way the trainer writes it: config.json from
// TrainConfig::to_json and metrics.jsonl through MetricsLog.
void write_fake_run(const std::string& dir, const FakeRun& f) {
  fs::create_directories(dir);
  pactq::train::TrainConfig c;
  c.model = "resnet20";
  c.wbits = f.wbits;
  c.abits = f.abits;
  c.epochs = f.epochs;
  c.out = dir;
  std::ofstream(dir + "/config.json") << c.to_json().dump(2) << "\n";
  pactq::train::MetricsLog log(dir);
  for (int e = 1; e <= f.epochs; ++e) {
    nlohmann::ordered_json row;
    row["epoch"] = e;
    row["step"] = e * 390;
    row["train_loss"] = 2.0 / e;
    row["train_top1"] = 40 + 8.0 * e + f.top1_offset;
    row["test_loss"] = 2.2 / e + 0.1;
    row["test_top1"] = 35 + 7.5 * e + f.top1_offset;
    row["test_top5"] = 90.0;
    row["lr"] = 0.1 * std::pow(0.5, e / 3);
    row["seconds"] = 10.0 + e;
    row["train_images_per_s"] = 5000.0;
    row["data_wait_share"] = 0.01;
    if (f.deployed) row["test_top1_deployed"] = 34 + 7.5 * e + f.top1_offset;
    if (f.val) {
      row["val_loss"] = 2.1 / e;
      row["val_top1"] = 36 + 7.0 * e;
      row["val_top1_deployed"] = 35 + 7.0 * e;
    }
    for (size_t i = 0; i < f.alpha_layers.size(); ++i)
      row["alpha:" + f.alpha_layers[i]] = 10.0 - (0.2 + 0.05 * static_cast<double>(i)) * e;
    log.append(row);
  }
}

}  // namespace

// ---- chart maths --------------------------------------------------------------

TEST(ReportChart, NiceTicksAreRoundAndCoverTheRange) {
  const auto t = nice_ticks(0.37, 9.2, 5);
  EXPECT_DOUBLE_EQ(t.step, 2);
  EXPECT_LE(t.lo(), 0.37);
  EXPECT_GE(t.hi(), 9.2);
  for (double v : t.values) EXPECT_NEAR(std::remainder(v, t.step), 0, 1e-12) << v;

  const auto small = nice_ticks(9.921, 9.983, 5);  // alphas moving in the second decimal
  EXPECT_DOUBLE_EQ(small.step, 0.01);
  EXPECT_EQ(pactq::report::format_tick(small.values[1], small.step), "9.93");

  const auto epochs = nice_ticks(1, 3, 6, /*integer=*/true);
  EXPECT_EQ(epochs.values, (std::vector<double>{1, 2, 3}));

  // Degenerate and non-finite ranges still give a usable axis.
  for (const auto& [lo, hi] : std::vector<std::pair<double, double>>{
           {5, 5}, {0, 0}, {NAN, NAN}, {INFINITY, -INFINITY}, {3, 1}}) {
    const auto d = nice_ticks(lo, hi, 5);
    ASSERT_GE(d.values.size(), 2u) << lo << " " << hi;
    EXPECT_LT(d.lo(), d.hi());
    if (std::isfinite(lo)) {
      EXPECT_LE(d.lo(), std::min(lo, hi));
      EXPECT_GE(d.hi(), std::max(lo, hi));
    }
  }
  EXPECT_EQ(pactq::report::format_tick(0.25, 0.05), "0.25");
  EXPECT_EQ(pactq::report::format_tick(20, 5), "20");
  EXPECT_EQ(pactq::report::format_tick(1e-17, 0.02), "0");
  EXPECT_EQ(pactq::report::format_tick(3e-8, 1e-8), "3e-08");
}

TEST(ReportChart, PolylineLeavesAGapAtAMissingValue) {
  const pactq::report::LinearScale sx{0, 10, 0, 100}, sy{0, 1, 100, 0};
  EXPECT_EQ(pactq::report::polyline_path({0, 5, 10}, {0, 0.5, 1}, sx, sy),
            "M0.0 100.0 L50.0 50.0 L100.0 0.0");
  EXPECT_EQ(pactq::report::polyline_path({1, 2, 3, 4}, {0, NAN, 1, 1}, sx, sy),
            "M10.0 100.0 M30.0 0.0 L40.0 0.0");
}

TEST(ReportChart, EverySeriesIsAnElementWithALegendEntry) {
  LineChart c;
  c.title = "T & <t>";
  c.y_label = "y";
  for (int s = 0; s < 3; ++s) {
    c.series.push_back(Series{"s" + std::to_string(s),
                              "label " + std::to_string(s),
                              {1, 2, 3},
                              {1.0 * s, 2.0, 3.0 + s},
                              "",
                              ""});
  }
  const std::string svg = pactq::report::render_line_chart(c);
  EXPECT_EQ(count(svg, "class=\"series\""), 3u);
  EXPECT_EQ(count(svg, "data-legend=\""), 3u);
  EXPECT_EQ(count(svg, "<svg"), 1u);
  EXPECT_NE(svg.find("T &amp; &lt;t&gt;"), std::string::npos);  // escaped title
  EXPECT_NE(svg.find(">label 2</text>"), std::string::npos);
  EXPECT_EQ(svg.find("no data"), std::string::npos);
  // 20 series get 20 different colour/dash pairs.
  std::set<std::string> styles;
  for (size_t i = 0; i < 20; ++i)
    styles.insert(pactq::report::series_color(i) + "|" + pactq::report::series_dash(i));
  EXPECT_EQ(styles.size(), 20u);

  LineChart empty;
  empty.title = "nothing";
  EXPECT_NE(pactq::report::render_line_chart(empty).find("no data"), std::string::npos);
}

// ---- the page -----------------------------------------------------------------

TEST(Report, OneSeriesPerAlphaLayer) {
  const std::string tmp = temp_dir();
  write_fake_run(tmp + "/w4a4", FakeRun{});
  std::string err;
  ASSERT_EQ(run_pactq("report " + tmp + "/w4a4 -o " + tmp + "/r.html", &err, tmp), 0) << err;
  EXPECT_EQ(err, "");
  const std::string html = read_file(tmp + "/r.html");
  const auto expected = alpha_keys_in(tmp + "/w4a4/metrics.jsonl");
  ASSERT_EQ(expected.size(), 19u);
  const auto ids = series_ids(html, "alpha:");
  EXPECT_EQ(ids.size(), expected.size());
  EXPECT_EQ(std::set<std::string>(ids.begin(), ids.end()), expected);
  // Every layer is named in a legend, and the header says what the run was.
  for (const auto& key : expected)
    EXPECT_NE(html.find(">" + key.substr(6) + "</text>"), std::string::npos) << key;
  // Legend in the file's (forward) order, not alphabetical: act0 is written last.
  EXPECT_LT(html.find("data-legend=\"alpha:layer3.2.act2\""),
            html.find("data-legend=\"alpha:act0\""));
  EXPECT_NE(html.find("W4/A4"), std::string::npos);
  EXPECT_NE(html.find("resnet20"), std::string::npos);
  EXPECT_NE(html.find("6 of 6"), std::string::npos);  // epochs done
  EXPECT_NE(html.find("80.00%"), std::string::npos);  // final (= best) test top-1: 35 + 7.5 * 6
  // Fixed charts: loss, top-1, lr, alphas; no deployed / val series in an old-style run.
  EXPECT_EQ(count(html, "<svg"), 4u);
  EXPECT_EQ(series_ids(html, "test_top1_deployed").size(), 0u);
  EXPECT_EQ(series_ids(html, "val_").size(), 0u);
  EXPECT_EQ(html.find("<script"), std::string::npos);
  EXPECT_EQ(count(html, "http"), count(html, "http://www.w3.org/2000/svg"));  // no fetches
  fs::remove_all(tmp);
}

TEST(Report, AlphaSvgIsAStandaloneChartWithOneSeriesPerAlpha) {
  const std::string tmp = temp_dir();
  write_fake_run(tmp + "/w2a2", FakeRun{});
  std::string err;
  ASSERT_EQ(
      run_pactq("report " + tmp + "/w2a2 -o " + tmp + "/r.html --alpha-svg " + tmp + "/alphas.svg",
                &err, tmp),
      0)
      << err;
  const std::string svg = read_file(tmp + "/alphas.svg");
  EXPECT_EQ(svg.rfind("<?xml", 0), 0u) << "a standalone document";
  EXPECT_EQ(count(svg, "<svg xmlns=\"http://www.w3.org/2000/svg\""), 1u);
  const auto ids = series_ids(svg, "alpha:");
  EXPECT_EQ(std::set<std::string>(ids.begin(), ids.end()),
            alpha_keys_in(tmp + "/w2a2/metrics.jsonl"));
  EXPECT_EQ(ids.size(), 19u);
  // A run without learned alphas has no such chart: an error naming the option.
  FakeRun fp;
  fp.alpha_layers.clear();
  write_fake_run(tmp + "/fp", fp);
  EXPECT_NE(run_pactq("report " + tmp + "/fp -o " + tmp + "/r2.html --alpha-svg " + tmp + "/x.svg",
                      &err, tmp),
            0);
  EXPECT_NE(err.find("--alpha-svg"), std::string::npos) << err;
  EXPECT_FALSE(fs::exists(tmp + "/x.svg"));
  // Nothing written: the page is not left behind a failure that says otherwise.
  EXPECT_FALSE(fs::exists(tmp + "/r2.html"));
  fs::remove_all(tmp);
}

TEST(Report, RealTrainingRun) {
  if (!fs::exists("/usr/share/datasets/fashion-mnist"))
    PACTQ_SKIP_MISSING("dataset-fashion-mnist not installed");
  const std::string tmp = temp_dir();
  ASSERT_EQ(run_pactq("train --model lenet5 --dataset fashion-mnist --epochs 2 --wbits 3 --abits 2 "
                      "--limit-train 512 --limit-test 200 --quiet --out " +
                          tmp + "/lenet",
                      nullptr, tmp),
            0);
  std::string err;
  ASSERT_EQ(run_pactq("report " + tmp + "/lenet -o " + tmp + "/r.html", &err, tmp), 0) << err;
  const std::string html = read_file(tmp + "/r.html");
  const auto expected = alpha_keys_in(tmp + "/lenet/metrics.jsonl");
  ASSERT_FALSE(expected.empty());
  const auto ids = series_ids(html, "alpha:");
  EXPECT_EQ(ids.size(), expected.size());
  EXPECT_EQ(std::set<std::string>(ids.begin(), ids.end()), expected);
  EXPECT_NE(html.find("W3/A2"), std::string::npos);
  EXPECT_NE(html.find("lenet5"), std::string::npos);
  EXPECT_NE(html.find("2 of 2"), std::string::npos);
  fs::remove_all(tmp);
}

TEST(Report, NewerKeysGetTheirSeriesAndHeaderLines) {
  const std::string tmp = temp_dir();
  FakeRun f;
  f.deployed = true;
  f.val = true;
  write_fake_run(tmp + "/run", f);
  ASSERT_EQ(run_pactq("report " + tmp + "/run -o " + tmp + "/r.html", nullptr, tmp), 0);
  const std::string html = read_file(tmp + "/r.html");
  EXPECT_EQ(series_ids(html, "test_top1_deployed").size(), 1u);
  EXPECT_EQ(series_ids(html, "val_top1").size(), 2u);  // val_top1 and val_top1_deployed
  EXPECT_EQ(series_ids(html, "val_loss").size(), 1u);
  EXPECT_NE(html.find("final test top-1 (deployed integer)"), std::string::npos);
  EXPECT_NE(html.find("79.00%"), std::string::npos);  // 34 + 7.5 * 6
  fs::remove_all(tmp);
}

TEST(Report, TwoRunsGetAComparisonTable) {
  const std::string tmp = temp_dir();
  FakeRun a;
  a.deployed = true;
  FakeRun b;
  b.wbits = "2";
  b.abits = "2";
  b.epochs = 4;
  b.top1_offset = -10;
  b.alpha_layers = {"act1", "act2"};
  write_fake_run(tmp + "/w4a4", a);
  write_fake_run(tmp + "/w2&a2", b);  // a name that needs escaping
  std::string err;
  ASSERT_EQ(
      run_pactq("report " + tmp + "/w4a4 '" + tmp + "/w2&a2' -o " + tmp + "/r.html", &err, tmp), 0)
      << err;
  const std::string html = read_file(tmp + "/r.html");
  const size_t begin = html.find("<table class=\"comparison\">");
  ASSERT_NE(begin, std::string::npos);
  const std::string table = html.substr(begin, html.find("</table>", begin) - begin);
  EXPECT_EQ(count(table, "<tr data-run="), 2u);
  EXPECT_NE(table.find("<tr data-run=\"w4a4\">"), std::string::npos);
  EXPECT_NE(table.find("<tr data-run=\"w2&amp;a2\">"), std::string::npos);
  EXPECT_NE(table.find("W4/A4"), std::string::npos);
  EXPECT_NE(table.find("W2/A2"), std::string::npos);
  EXPECT_NE(table.find("80.00%"), std::string::npos);      // a: final test top-1
  EXPECT_NE(table.find("79.00%"), std::string::npos);      // a: final deployed top-1
  EXPECT_NE(table.find("55.00%"), std::string::npos);      // b: 35 + 7.5 * 4 - 10
  EXPECT_NE(table.find("1 min 21 s"), std::string::npos);  // a: 6 epochs of 10 + e seconds
  EXPECT_NE(table.find("50.0 s"), std::string::npos);      // b: 4 epochs
  // One overlaid test top-1 line per run, and each run's own section.
  EXPECT_EQ(series_ids(html, "run:").size(), 2u);
  EXPECT_EQ(series_ids(html, "run:w2&amp;a2").size(), 1u);
  EXPECT_EQ(series_ids(html, "alpha:").size(), 19u + 2u);
  EXPECT_EQ(count(html, "<section class=\"run\""), 2u);
  EXPECT_EQ(html.find("w2&a2"), std::string::npos);  // never unescaped
  fs::remove_all(tmp);
}

TEST(Report, TruncatedLastLineWarnsAndReportsTheCompleteEpochs) {
  const std::string tmp = temp_dir();
  FakeRun f;
  f.epochs = 3;
  write_fake_run(tmp + "/killed", f);
  // A run killed while appending epoch 4: half a line, no newline.
  std::ofstream(tmp + "/killed/metrics.jsonl", std::ios::app)
      << R"({"epoch":4,"step":1560,"train_loss":0.5,"train_to)";
  std::string err;
  ASSERT_EQ(run_pactq("report " + tmp + "/killed -o " + tmp + "/r.html", &err, tmp), 0) << err;
  EXPECT_EQ(count(err, "\n"), 1u) << err;  // one line
  EXPECT_NE(err.find("pactq: warning: " + tmp + "/killed/metrics.jsonl:4: truncated"),
            std::string::npos)
      << err;
  const std::string html = read_file(tmp + "/r.html");
  EXPECT_NE(html.find("3 of 3"), std::string::npos);
  EXPECT_NE(html.find("metrics.jsonl:4: truncated"), std::string::npos);  // also in the page
  EXPECT_EQ(series_ids(html, "alpha:").size(), 19u);
  fs::remove_all(tmp);
}

TEST(Report, MissingOrEmptyMetricsWarnAndReportTheConfig) {
  const std::string tmp = temp_dir();
  FakeRun f;
  write_fake_run(tmp + "/none", f);
  fs::remove(tmp + "/none/metrics.jsonl");
  write_fake_run(tmp + "/empty", f);
  std::ofstream(tmp + "/empty/metrics.jsonl", std::ios::trunc).flush();
  fs::create_directories(tmp + "/bare");  // not even a config.json
  std::string err;
  ASSERT_EQ(
      run_pactq("report " + tmp + "/none " + tmp + "/empty " + tmp + "/bare -o " + tmp + "/r.html",
                &err, tmp),
      0)
      << err;
  EXPECT_NE(err.find(tmp + "/none/metrics.jsonl: missing"), std::string::npos) << err;
  EXPECT_NE(err.find(tmp + "/empty/metrics.jsonl: empty"), std::string::npos) << err;
  EXPECT_NE(err.find(tmp + "/bare/config.json: missing"), std::string::npos) << err;
  const std::string html = read_file(tmp + "/r.html");
  EXPECT_EQ(count(html, "<tr data-run="), 3u);
  EXPECT_NE(html.find("no data"), std::string::npos);
  EXPECT_EQ(series_ids(html, "alpha:").size(), 0u);
  fs::remove_all(tmp);
}

TEST(Report, MissingDirectoryIsAnError) {
  const std::string tmp = temp_dir();
  write_fake_run(tmp + "/ok", FakeRun{});
  std::string err;
  EXPECT_NE(
      run_pactq("report " + tmp + "/ok " + tmp + "/nosuchrun -o " + tmp + "/r.html", &err, tmp), 0);
  EXPECT_NE(err.find("pactq: error: " + tmp + "/nosuchrun"), std::string::npos) << err;
  EXPECT_FALSE(fs::exists(tmp + "/r.html"));
  EXPECT_THROW(pactq::report::load_run(tmp + "/nosuchrun"), std::invalid_argument);
  fs::remove_all(tmp);
}

// ---- in a browser ---------------------------------------------------------------

TEST(Report, BrowserRendersCharts) {
  if (!fs::exists(kChromium)) PACTQ_SKIP_MISSING(kChromium << " not installed (scripts/setup)");
  const std::string tmp = temp_dir();
  FakeRun a;
  a.deployed = true;
  FakeRun b;
  b.wbits = "2";
  b.top1_offset = -10;
  write_fake_run(tmp + "/a", a);
  write_fake_run(tmp + "/b", b);
  ASSERT_EQ(run_pactq("report " + tmp + "/a " + tmp + "/b -o " + tmp + "/r.html", nullptr, tmp), 0);
  fs::create_directories(tmp + "/profile");
  const std::string png = tmp + "/shot.png";
  const auto t0 = std::chrono::steady_clock::now();
  const std::string cmd = "HOME=" + tmp + " timeout 120 " + kChromium +
                          " --headless --no-sandbox --disable-gpu --disable-quic --no-first-run"
                          " --disable-background-networking --disable-component-update"
                          " --disable-sync --user-data-dir=" +
                          tmp + "/profile --screenshot=" + png +
                          " --window-size=1200,2000 file://" + tmp + "/r.html >" + tmp +
                          "/chromium.log 2>&1";
  const int rc = std::system(cmd.c_str());
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  ASSERT_TRUE(WIFEXITED(rc) && WEXITSTATUS(rc) == 0 && fs::exists(png))
      << "chromium failed:\n"
      << read_file(tmp + "/chromium.log");
  RecordProperty("chromium_seconds", std::to_string(seconds));
  std::printf("chromium screenshot in %.1f s\n", seconds);

  const std::string bytes_text = read_file(png);
  const std::vector<uint8_t> bytes(bytes_text.begin(), bytes_text.end());
  const at::Tensor image = pactq::data::decode_image(bytes, png);  // uint8 [3, H, W]
  ASSERT_EQ(image.size(0), 3);
  const int64_t h = image.size(1), w = image.size(2);
  EXPECT_EQ(w, 1200);
  EXPECT_EQ(h, 2000);
  const at::Tensor px = image.permute({1, 2, 0}).contiguous();
  const uint8_t* p = px.data_ptr<uint8_t>();
  // The charts: the first 1500 rows hold the comparison chart and the first
  // run's charts.
  const int64_t rows = std::min<int64_t>(h, 1500);
  int64_t non_white = 0, blue = 0, orange = 0;
  std::set<uint32_t> colours;
  auto near = [](const uint8_t* q, int r, int g, int b) {
    return std::abs(q[0] - r) < 24 && std::abs(q[1] - g) < 24 && std::abs(q[2] - b) < 24;
  };
  for (int64_t i = 0; i < rows * w; ++i) {
    const uint8_t* q = p + 3 * i;
    if (q[0] < 245 || q[1] < 245 || q[2] < 245) ++non_white;
    colours.insert((q[0] >> 3) << 10 | (q[1] >> 3) << 5 | (q[2] >> 3));
    blue += near(q, 0x1f, 0x77, 0xb4);
    orange += near(q, 0xff, 0x7f, 0x0e);
  }
  const double share = static_cast<double>(non_white) / static_cast<double>(rows * w);
  std::printf("non-white %.1f%%, %zu colours, %lld blue and %lld orange pixels\n", 100 * share,
              colours.size(), static_cast<long long>(blue), static_cast<long long>(orange));
  EXPECT_GT(share, 0.02);
  EXPECT_GE(colours.size(), 30u);
  EXPECT_GT(blue, 1000);    // the first series of each chart is drawn
  EXPECT_GT(orange, 1000);  // and the second
  fs::remove_all(tmp);
}
