#include "pactq/train/metrics_log.h"

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <stdexcept>

namespace pactq::train {

MetricsLog::MetricsLog(const std::string& out_dir)
    : csv_path_(out_dir + "/metrics.csv"), jsonl_path_(out_dir + "/metrics.jsonl") {}

void MetricsLog::append(const nlohmann::ordered_json& row) {
  const bool fresh =
      !std::filesystem::exists(csv_path_) || std::filesystem::file_size(csv_path_) == 0;
  std::ofstream csv(csv_path_, std::ios::app);
  std::ofstream jsonl(jsonl_path_, std::ios::app);
  if (!csv || !jsonl) throw std::runtime_error(csv_path_ + ": cannot append metrics");
  if (fresh) {
    bool first = true;
    for (const auto& item : row.items()) {
      csv << (first ? "" : ",") << item.key();
      first = false;
    }
    csv << "\n";
  }
  bool first = true;
  for (const auto& item : row.items()) {
    csv << (first ? "" : ",");
    if (item.value().is_string()) {
      csv << item.value().get<std::string>();
    } else {
      csv << item.value().dump();
    }
    first = false;
  }
  csv << "\n";
  jsonl << row.dump() << "\n";
  // A full disk shows only here: the streams do not throw.
  csv.flush();
  jsonl.flush();
  if (!csv || !jsonl) {
    throw std::runtime_error((csv ? jsonl_path_ : csv_path_) +
                             ": cannot append metrics: " + std::strerror(errno));
  }
}

}  // namespace pactq::train
