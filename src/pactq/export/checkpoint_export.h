// Checkpoint export: a pactq training checkpoint -> a .pqm file (the model
// rebuilt from the checkpoint's own config, lowered, written atomically).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "pactq/export/export_plan.h"
#include "pactq/models/model.h"
#include "pactq/train/config.h"

namespace pactq::export_ {

// What export_checkpoint did.
struct ExportReport {
  std::string path;
  size_t file_bytes = 0;
  int64_t fp32_weight_bytes = 0;
  size_t nodes = 0;
  std::string model;
  std::string precision;
  std::vector<std::string> warnings;  // e.g. class names left out: the dataset was unreadable
};

// Rebuilds the model from a pactq training checkpoint and writes the .pqm.
// Errors (missing/corrupt checkpoint, unsupported model) name the file. The
// class names come from the checkpoint's dataset; when it cannot be read
// (exporting on a machine without the data) they are left out and
// ExportReport::warnings says why.
ExportReport export_checkpoint(const std::string& checkpoint, const std::string& out_path);

// The checkpoint's model, rebuilt from its stored config and loaded, in eval
// mode. Errors name the checkpoint.
struct RebuiltModel {
  train::TrainConfig config;
  models::QuantModelPtr model;
};
RebuiltModel rebuild_from_checkpoint(const std::string& checkpoint);

// What every exported file records about its checkpoint: model, class names,
// precision, source. Class names are left out when the dataset cannot be
// read, and `warning` says why (else it is left empty).
ExportMetadata checkpoint_metadata(const std::string& checkpoint, const RebuiltModel& r,
                                   std::string* warning);

}  // namespace pactq::export_
