#include "pactq/export/checkpoint_export.h"

#include <filesystem>
#include <stdexcept>

#include "pactq/common/format.h"
#include "pactq/data/registry.h"
#include "pactq/export/plan_builder.h"
#include "pactq/train/checkpoint.h"
#include "pactq/train/model_setup.h"

namespace pactq::export_ {

RebuiltModel rebuild_from_checkpoint(const std::string& checkpoint) {
  if (!std::filesystem::exists(checkpoint)) {
    throw std::runtime_error(checkpoint + ": checkpoint not found");
  }
  RebuiltModel r;
  try {
    r.config = train::read_checkpoint_header(checkpoint).config;
    r.model = train::build_model(r.config, r.config.num_classes);
    train::load_checkpoint(checkpoint, *r.model, nullptr);
  } catch (const std::exception& e) {
    const std::string what = e.what();
    if (what.find(checkpoint) != std::string::npos) throw;
    throw std::runtime_error(checkpoint + ": " + what);
  }
  r.model->eval();
  return r;
}

namespace {

// The dataset's class names. Exporting needs no data, so a dataset that
// cannot be read (exporting on another machine) leaves the names out with a
// warning that says why, instead of failing or staying silent.
std::vector<std::string> class_names_of(const std::string& checkpoint,
                                        const train::TrainConfig& config, std::string& warning) {
  try {
    const auto ds = data::open_dataset(config.dataset, config.data_dir, data::Split::Test);
    return ds->info().class_names;
  } catch (const std::exception& e) {
    const std::string dir =
        config.data_dir.empty() ? data::default_data_dir(config.dataset) : config.data_dir;
    warning = pactq::format("{}: class names not written: cannot read its dataset '{}' ({}): {}",
                            checkpoint, config.dataset,
                            dir.empty() ? std::string("no data dir") : "data dir '" + dir + "'",
                            e.what());
    return {};
  }
}

}  // namespace

ExportMetadata checkpoint_metadata(const std::string& checkpoint, const RebuiltModel& r,
                                   std::string* warning) {
  ExportMetadata meta;
  meta.model = r.model->model_name();
  meta.classes = class_names_of(checkpoint, r.config, *warning);
  meta.precision = r.config.precision_policy().summary();
  meta.source = std::filesystem::absolute(checkpoint).string();
  return meta;
}

ExportReport export_checkpoint(const std::string& checkpoint, const std::string& out_path) {
  RebuiltModel r = rebuild_from_checkpoint(checkpoint);
  const ExportPlan plan = build_export_plan(*r.model, r.config.mean, r.config.std);
  std::string warning;
  const ExportMetadata meta = checkpoint_metadata(checkpoint, r, &warning);
  ExportReport rep;
  rep.path = out_path;
  rep.file_bytes = plan.write(out_path, meta);
  rep.fp32_weight_bytes = plan.fp32_weight_bytes();
  rep.nodes = plan.steps().size();
  rep.model = meta.model;
  rep.precision = meta.precision;
  if (!warning.empty()) rep.warnings.push_back(warning);
  return rep;
}

}  // namespace pactq::export_
