// Per-epoch metrics in two forms: metrics.csv (one row per epoch, one column
// per number, every layer's alpha included) and metrics.jsonl (one JSON object
// per line). Appends when resuming.
#pragma once
#include <nlohmann/json.hpp>

#include <string>

namespace pactq::train {

class MetricsLog {
 public:
  explicit MetricsLog(const std::string& out_dir);
  // Writes one epoch; the CSV header comes from the first row's keys (in order).
  void append(const nlohmann::ordered_json& row);

 private:
  std::string csv_path_;
  std::string jsonl_path_;
};

}  // namespace pactq::train
