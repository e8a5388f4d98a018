// `pactq report`: one self-contained HTML page (inline SVG, no scripts, no
// network) from training run directories: each run's configuration, final and
// best accuracy, loss / top-1 / learning-rate / per-layer alpha curves over
// epochs, and for several runs a comparison table and overlaid test top-1.
// Torch-free: it reads config.json and metrics.jsonl (train/metrics_log.h).
#pragma once
#include <nlohmann/json.hpp>

#include <string>
#include <vector>

namespace pactq::report {

struct Run {
  std::string dir;        // as given
  std::string name;       // the directory's basename (made unique across a report)
  nlohmann::json config;  // config.json; null when missing or unreadable
  // metrics.jsonl objects, by epoch, one per epoch; keys in file order (the
  // trainer writes the alphas in forward order)
  std::vector<nlohmann::ordered_json> epochs;
  std::vector<std::string> warnings;  // one line each, naming the file (and line)
};

// Reads a run directory. A missing, empty or partly written metrics.jsonl
// (a run killed mid-write leaves a truncated last line) or config.json is a
// warning and the run keeps what could be read; a path that is not a
// directory throws std::invalid_argument naming it.
Run load_run(const std::string& dir);

// The numeric value of key in a metrics row; NaN when absent or not a number
// (nlohmann writes a NaN as null).
double metric(const nlohmann::ordered_json& row, const std::string& key);

// The "alpha:<layer>" keys over all epochs, in first-seen (forward) order.
std::vector<std::string> alpha_keys(const Run& run);

std::string render_html(const std::vector<Run>& runs);

// The per-layer alpha chart alone, a standalone SVG document (the page's own
// chart); "" when the run has no learned alpha.
std::string alpha_chart_svg(const Run& run);

// Loads every directory (throwing on one that does not exist before writing
// anything), renders, and writes out atomically. Returns the warnings.
std::vector<std::string> write_report(const std::vector<std::string>& dirs,
                                      const std::string& out_path);

}  // namespace pactq::report
