#include "pactq/report/report.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <set>
#include <sstream>
#include <stdexcept>

#include "pactq/common/atomic_file.h"
#include "pactq/report/svg_chart.h"

namespace pactq::report {
namespace fs = std::filesystem;

namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
constexpr int kMaxBadLineWarnings = 5;  // per file; the rest are counted

std::string read_text(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) throw std::runtime_error(path + ": cannot read");
  std::ostringstream s;
  s << f.rdbuf();
  return s.str();
}

std::string run_name(const std::string& dir) {
  fs::path p(dir);
  while (p.has_relative_path() && p.filename().empty()) p = p.parent_path();  // "runs/a/"
  std::string name = p.filename().string();
  if (name.empty() || name == "." || name == "..") {
    std::error_code ec;
    name = fs::weakly_canonical(p, ec).filename().string();
  }
  return name.empty() ? dir : name;
}

void load_metrics(Run& run) {
  const std::string path = (fs::path(run.dir) / "metrics.jsonl").string();
  if (!fs::exists(path)) {
    run.warnings.push_back(path + ": missing (no finished epoch yet?); the report shows " +
                           "the configuration only");
    return;
  }
  std::string text;
  try {
    text = read_text(path);
  } catch (const std::exception& e) {
    run.warnings.push_back(std::string(e.what()) + "; the report shows the configuration only");
    return;
  }
  if (text.find_first_not_of(" \t\r\n") == std::string::npos) {
    run.warnings.push_back(path + ": empty (no finished epoch yet?); the report shows " +
                           "the configuration only");
    return;
  }
  std::map<long long, nlohmann::ordered_json> by_epoch;
  int bad_lines = 0;
  auto bad = [&](size_t line_no, const std::string& why) {
    if (++bad_lines <= kMaxBadLineWarnings)
      run.warnings.push_back(path + ":" + std::to_string(line_no) + ": " + why);
  };
  size_t line_no = 0;
  size_t pos = 0;
  while (pos < text.size()) {
    const size_t end = text.find('\n', pos);
    const bool complete = end != std::string::npos;  // a line without '\n' may be cut short
    const std::string line = text.substr(pos, complete ? end - pos : std::string::npos);
    pos = complete ? end + 1 : text.size();
    ++line_no;
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    nlohmann::ordered_json row;
    try {
      row = nlohmann::ordered_json::parse(line);
    } catch (const nlohmann::json::parse_error&) {
      if (!complete) {
        bad(line_no,
            "truncated last line (the run was killed mid-write?), ignored; the report uses the "
            "complete lines before it");
      } else {
        bad(line_no, "not valid JSON, line skipped");
      }
      continue;
    }
    if (!row.is_object() || !row.contains("epoch") || !row["epoch"].is_number()) {
      bad(line_no, "not a metrics object with an \"epoch\", line skipped");
      continue;
    }
    const long long epoch = row["epoch"].get<long long>();
    if (by_epoch.count(epoch) != 0) {
      bad(line_no, "epoch " + std::to_string(epoch) +
                       " again (a resumed run?); the later line replaces the earlier one");
    }
    by_epoch[epoch] = std::move(row);
  }
  if (bad_lines > kMaxBadLineWarnings) {
    run.warnings.push_back(path + ": " + std::to_string(bad_lines - kMaxBadLineWarnings) +
                           " more bad lines not listed");
  }
  for (auto& [epoch, row] : by_epoch) run.epochs.push_back(std::move(row));
  if (run.epochs.empty()) {
    run.warnings.push_back(path + ": no complete epoch in it; the report shows the " +
                           "configuration only");
  }
}

void load_config(Run& run) {
  const std::string path = (fs::path(run.dir) / "config.json").string();
  if (!fs::exists(path)) {
    run.warnings.push_back(path + ": missing; the run's settings are unknown");
    return;
  }
  try {
    nlohmann::json j = nlohmann::json::parse(read_text(path));
    if (!j.is_object()) throw std::runtime_error("not a JSON object");
    run.config = std::move(j);
  } catch (const std::exception& e) {
    run.warnings.push_back(path + ": unreadable (" + std::string(e.what()) +
                           "); the run's settings are unknown");
  }
}

// ---- formatting --------------------------------------------------------------

std::string fixed(double v, int decimals) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", decimals, v);
  return buf;
}

std::string percent(double v) {
  return std::isfinite(v) ? fixed(v, 2) + "%" : "&mdash;";
}

std::string duration(double seconds) {
  if (!std::isfinite(seconds)) return "&mdash;";
  if (seconds < 60) return fixed(seconds, 1) + " s";
  const long long s = std::llround(seconds);
  char buf[64];
  if (s < 3600) {
    std::snprintf(buf, sizeof buf, "%lld min %02lld s", s / 60, s % 60);
  } else {
    std::snprintf(buf, sizeof buf, "%lld h %02lld min", s / 3600, (s % 3600) / 60);
  }
  return buf;
}

// A config value as text ("?" when unknown); strings without their quotes.
std::string cfg(const Run& run, const std::string& key) {
  if (!run.config.is_object() || !run.config.contains(key)) return "?";
  const nlohmann::json& v = run.config[key];
  return v.is_string() ? v.get<std::string>() : v.dump();
}

std::string precision(const Run& run) {
  auto bits = [&](const std::string& key) {
    const std::string b = cfg(run, key);
    return b == "32" ? std::string("fp") : b;
  };
  return "W" + bits("wbits") + "/A" + bits("abits");
}

// The last finite value of key and its epoch.
struct Point {
  double value = kNaN;
  double epoch = kNaN;
};
Point last_of(const Run& run, const std::string& key) {
  for (auto it = run.epochs.rbegin(); it != run.epochs.rend(); ++it) {
    const double v = metric(*it, key);
    if (std::isfinite(v)) return {v, metric(*it, "epoch")};
  }
  return {};
}
Point best_of(const Run& run, const std::string& key) {
  Point best;
  for (const auto& row : run.epochs) {
    const double v = metric(row, key);
    if (std::isfinite(v) && !(v <= best.value)) best = {v, metric(row, "epoch")};
  }
  return best;
}
bool has_metric(const Run& run, const std::string& key) {
  return std::isfinite(last_of(run, key).value);
}
double wall_seconds(const Run& run) {
  if (run.epochs.empty()) return kNaN;
  double sum = 0;
  for (const auto& row : run.epochs) {
    const double s = metric(row, "seconds");
    if (std::isfinite(s)) sum += s;
  }
  return sum;
}
std::string at_epoch(const Point& p) {
  return std::isfinite(p.value)
             ? percent(p.value) + " <span class=\"dim\">(epoch " + fixed(p.epoch, 0) + ")</span>"
             : "&mdash;";
}

Series metric_series(const Run& run, const std::string& key, const std::string& label,
                     size_t color_index, const std::string& dash = "") {
  Series s;
  s.id = key;
  s.label = label;
  s.color = series_color(color_index);
  s.dash = dash;
  for (const auto& row : run.epochs) {
    s.x.push_back(metric(row, "epoch"));
    s.y.push_back(metric(row, key));
  }
  return s;
}

// Fixed colours per role, the same in every run's charts.
enum Role : size_t { kTrain = 0, kTest = 1, kDeployed = 2, kVal = 4, kValDeployed = 5 };

std::string run_charts(const Run& run) {
  std::string o = "<div class=\"charts\">\n";
  LineChart loss{"Loss", "epoch", "cross-entropy loss", {}};
  loss.series.push_back(metric_series(run, "train_loss", "train", kTrain));
  loss.series.push_back(metric_series(run, "test_loss", "test", kTest));
  if (has_metric(run, "val_loss"))
    loss.series.push_back(metric_series(run, "val_loss", "validation", kVal));
  o += render_line_chart(loss);

  LineChart top1{"Top-1 accuracy", "epoch", "top-1 (%)", {}};
  top1.series.push_back(metric_series(run, "train_top1", "train (fake-quant)", kTrain));
  top1.series.push_back(metric_series(run, "test_top1", "test (fake-quant)", kTest));
  if (has_metric(run, "test_top1_deployed"))
    top1.series.push_back(
        metric_series(run, "test_top1_deployed", "test (deployed integer)", kDeployed, "6 3"));
  if (has_metric(run, "val_top1"))
    top1.series.push_back(metric_series(run, "val_top1", "validation (fake-quant)", kVal));
  if (has_metric(run, "val_top1_deployed"))
    top1.series.push_back(
        metric_series(run, "val_top1_deployed", "validation (deployed)", kValDeployed, "6 3"));
  o += render_line_chart(top1);

  LineChart lr{"Learning rate", "epoch", "learning rate", {}};
  lr.y_from_zero = true;
  lr.series.push_back(metric_series(run, "lr", "lr", kTrain));
  o += render_line_chart(lr);

  const std::string alphas = alpha_chart_svg(run);
  if (alphas.empty()) {
    o += "<p class=\"note\">No learned PACT alpha in the metrics (activations not "
         "PACT-quantized, or no finished epoch).</p>\n";
  } else {
    o += alphas;
  }
  o += "</div>\n";
  return o;
}

std::string summary_table(const Run& run) {
  std::string o = "<table class=\"summary\">\n";
  auto row = [&](const std::string& key, const std::string& value_html) {
    o += "<tr><th>" + key + "</th><td>" + value_html + "</td></tr>\n";
  };
  row("directory", "<code>" + xml_escape(run.dir) + "</code>");
  row("model", xml_escape(cfg(run, "model")) + " <span class=\"dim\">on " +
                   xml_escape(cfg(run, "dataset")) + "</span>");
  row("precision", xml_escape(precision(run)) + " <span class=\"dim\">(first/last layer: " +
                       xml_escape(cfg(run, "first_last")) + ")</span>");
  const std::string calibration = cfg(run, "alpha_calibration");
  const std::string alpha_init = calibration == "?" || calibration.empty()
                                     ? cfg(run, "alpha_init")
                                     : "calibrated (" + calibration + ")";
  std::string extras;  // what else shaped the run, when used
  if (cfg(run, "distill_from") != "?" && !cfg(run, "distill_from").empty()) {
    extras += ", distilled from " + cfg(run, "distill_from");
  }
  if (cfg(run, "val_split") != "?" && cfg(run, "val_split") != "0") {
    extras += ", " + cfg(run, "val_split") + " validation images";
  }
  row("quantizers", "weights " + xml_escape(cfg(run, "weight_quant")) + ", activations " +
                        xml_escape(cfg(run, "act_quant")) + " <span class=\"dim\">(alpha init " +
                        xml_escape(alpha_init) + ", alpha decay " +
                        xml_escape(cfg(run, "alpha_decay")) + xml_escape(extras) + ")</span>");
  row("optimiser", xml_escape(cfg(run, "optimizer")) + ", lr " + xml_escape(cfg(run, "lr")) +
                       ", schedule " + xml_escape(cfg(run, "schedule")));
  const std::string planned = cfg(run, "epochs");
  row("epochs done",
      std::to_string(run.epochs.size()) + (planned == "?" ? "" : " of " + xml_escape(planned)));
  row("final test top-1 (fake-quant)", at_epoch(last_of(run, "test_top1")));
  row("best test top-1 (fake-quant)", at_epoch(best_of(run, "test_top1")));
  if (has_metric(run, "test_top1_deployed")) {
    row("final test top-1 (deployed integer)", at_epoch(last_of(run, "test_top1_deployed")));
  }
  if (has_metric(run, "val_top1"))
    row("final validation top-1", at_epoch(last_of(run, "val_top1")));
  if (has_metric(run, "val_top1_deployed")) {
    row("final validation top-1 (deployed)", at_epoch(last_of(run, "val_top1_deployed")));
  }
  row("wall time",
      duration(wall_seconds(run)) + " <span class=\"dim\">(sum of epoch times)</span>");
  o += "</table>\n";
  return o;
}

std::string comparison(const std::vector<Run>& runs) {
  std::string o = "<section class=\"comparison\" id=\"comparison\">\n<h2>Comparison</h2>\n";
  o += "<table class=\"comparison\">\n<tr><th>run</th><th>model</th><th>precision</th>"
       "<th>final test top-1</th><th>final deployed top-1</th><th>best test top-1</th>"
       "<th>epochs</th><th>wall time</th></tr>\n";
  for (size_t i = 0; i < runs.size(); ++i) {
    const Run& r = runs[i];
    const Point best = best_of(r, "test_top1");
    o += "<tr data-run=\"" + xml_escape(r.name) + "\"><td><a href=\"#run-" + std::to_string(i) +
         "\">" + xml_escape(r.name) + "</a></td><td>" + xml_escape(cfg(r, "model")) + "</td><td>" +
         xml_escape(precision(r)) + "</td><td class=\"num\">" +
         percent(last_of(r, "test_top1").value) + "</td><td class=\"num\">" +
         percent(last_of(r, "test_top1_deployed").value) + "</td><td class=\"num\">" +
         percent(best.value) +
         (std::isfinite(best.value) ? " <span class=\"dim\">(" + fixed(best.epoch, 0) + ")</span>"
                                    : "") +
         "</td><td class=\"num\">" + std::to_string(r.epochs.size()) + "</td><td class=\"num\">" +
         duration(wall_seconds(r)) + "</td></tr>\n";
  }
  o += "</table>\n<div class=\"charts\">\n";
  LineChart overlay{"Test top-1 (fake-quant) by run", "epoch", "top-1 (%)", {}};
  overlay.width = 1000;
  overlay.plot_height = 280;
  for (size_t i = 0; i < runs.size(); ++i) {
    Series s = metric_series(runs[i], "test_top1", runs[i].name, i, series_dash(i));
    s.id = "run:" + runs[i].name;
    overlay.series.push_back(std::move(s));
  }
  o += render_line_chart(overlay);
  o += "</div>\n</section>\n";
  return o;
}

const char* const kStyle = R"(
body { font-family: sans-serif; margin: 16px; color: #222; background: #fff; max-width: 1180px; }
h1 { font-size: 22px; margin: 0 0 8px 0; }
h2 { font-size: 18px; margin: 24px 0 8px 0; border-bottom: 1px solid #ddd; padding-bottom: 4px; }
table { border-collapse: collapse; font-size: 13px; margin-bottom: 12px; }
th, td { padding: 3px 10px; text-align: left; border-bottom: 1px solid #eee; }
table.summary th { font-weight: normal; color: #555; }
table.comparison th { background: #f4f4f4; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
.dim { color: #888; }
.charts { display: flex; flex-wrap: wrap; gap: 12px; }
svg.chart { border: 1px solid #e6e6e6; }
ul.warnings { background: #fff6e0; border: 1px solid #f0c36d; padding: 8px 8px 8px 28px; font-size: 13px; }
p.note { color: #666; font-size: 13px; }
)";

}  // namespace

double metric(const nlohmann::ordered_json& row, const std::string& key) {
  if (!row.is_object()) return kNaN;
  const auto it = row.find(key);
  if (it == row.end() || !it->is_number()) return kNaN;
  return it->get<double>();
}

std::string alpha_chart_svg(const Run& run) {
  const std::vector<std::string> alphas = alpha_keys(run);
  if (alphas.empty()) return "";
  LineChart a{"PACT alpha per layer (" + std::to_string(alphas.size()) + " layers)",
              "epoch",
              "alpha (clipping level)",
              {}};
  // Many layers: a taller plot keeps the lines apart.
  if (alphas.size() > 10) a.plot_height = 300;
  for (size_t i = 0; i < alphas.size(); ++i) {
    a.series.push_back(metric_series(run, alphas[i], alphas[i].substr(6), i, series_dash(i)));
  }
  return render_line_chart(a);
}

std::vector<std::string> alpha_keys(const Run& run) {
  std::vector<std::string> keys;
  std::set<std::string> seen;
  for (const auto& row : run.epochs) {
    for (const auto& item : row.items()) {
      if (item.key().rfind("alpha:", 0) == 0 && seen.insert(item.key()).second)
        keys.push_back(item.key());
    }
  }
  return keys;
}

Run load_run(const std::string& dir) {
  if (!fs::exists(dir)) throw std::invalid_argument(dir + ": no such run directory");
  if (!fs::is_directory(dir)) throw std::invalid_argument(dir + ": not a directory");
  Run run;
  run.dir = dir;
  run.name = run_name(dir);
  load_config(run);
  load_metrics(run);
  return run;
}

std::string render_html(const std::vector<Run>& runs) {
  std::string names;
  for (const Run& r : runs) names += (names.empty() ? "" : ", ") + r.name;
  std::string o = "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n";
  o += "<meta name=\"generator\" content=\"pactq report\">\n";
  o += "<title>pactq report: " + xml_escape(names) + "</title>\n<style>" + kStyle +
       "</style>\n</head>\n<body>\n";
  o += "<h1>pactq training report</h1>\n<p class=\"dim\">" + std::to_string(runs.size()) +
       (runs.size() == 1 ? " run" : " runs") + ": ";
  for (size_t i = 0; i < runs.size(); ++i) {
    o += std::string(i ? ", " : "") + "<a href=\"#run-" + std::to_string(i) + "\">" +
         xml_escape(runs[i].name) + "</a>";
  }
  o += "</p>\n";
  std::vector<std::string> warnings;
  for (const Run& r : runs) warnings.insert(warnings.end(), r.warnings.begin(), r.warnings.end());
  if (!warnings.empty()) {
    o += "<ul class=\"warnings\">\n";
    for (const auto& w : warnings) o += "<li>" + xml_escape(w) + "</li>\n";
    o += "</ul>\n";
  }
  if (runs.size() >= 2) o += comparison(runs);
  for (size_t i = 0; i < runs.size(); ++i) {
    const Run& r = runs[i];
    o += "<section class=\"run\" id=\"run-" + std::to_string(i) + "\" data-run=\"" +
         xml_escape(r.name) + "\">\n<h2>" + xml_escape(r.name) + " <span class=\"dim\">" +
         xml_escape(cfg(r, "model")) + " " + xml_escape(precision(r)) + "</span></h2>\n";
    o += summary_table(r);
    o += run_charts(r);
    o += "</section>\n";
  }
  o += "</body>\n</html>\n";
  return o;
}

std::vector<std::string> write_report(const std::vector<std::string>& dirs,
                                      const std::string& out_path) {
  if (dirs.empty()) throw std::invalid_argument("report: no run directory given");
  std::vector<Run> runs;
  for (const auto& d : dirs) runs.push_back(load_run(d));
  // Names label series and table rows: make them unique (two runs called
  // "w4a4" in different folders keep their paths).
  std::map<std::string, int> uses;
  for (const Run& r : runs) ++uses[r.name];
  for (Run& r : runs) {
    if (uses[r.name] > 1) r.name = r.dir;
  }
  const std::string html = render_html(runs);
  write_bytes_atomically(out_path, html.data(), html.size());
  std::vector<std::string> warnings;
  for (const Run& r : runs) warnings.insert(warnings.end(), r.warnings.begin(), r.warnings.end());
  return warnings;
}

}  // namespace pactq::report
