#include "pactq/train/data_setup.h"

#include <algorithm>

#include "pactq/data/registry.h"
#include "pactq/train/model_setup.h"

namespace pactq::train {

data::DatasetOptions dataset_options(TrainConfig& config) {
  data::DatasetOptions d;
  if (config.mean.empty() && !config.init_from.empty()) {
    std::tie(config.mean, config.std) = normalization_from_metadata(config.init_from);
  }
  d.mean = config.mean;
  d.std = config.std;
  d.skip_bad_images = config.skip_bad_images;
  d.augment = config.augment;
  return d;
}

namespace {
void record_normalisation(TrainConfig& config, const data::DataLoader& loader) {
  if (config.mean.empty()) {
    const data::DatasetInfo info = loader.dataset().info();
    config.mean = info.mean;
    config.std = info.std;
  }
}
}  // namespace

std::unique_ptr<data::DataLoader> make_train_loader(TrainConfig& config) {
  data::LoaderOptions lo;
  lo.batch_size = config.batch_size;
  lo.shuffle = true;
  lo.seed = config.seed;
  lo.drop_last = true;
  lo.limit = config.limit_train;
  lo.workers = config.workers;
  auto loader = data::make_loader(config.dataset, config.data_dir, data::Split::Train,
                                  dataset_options(config), lo);
  record_normalisation(config, *loader);
  return loader;
}

std::unique_ptr<data::DataLoader> make_test_loader(TrainConfig& config) {
  data::LoaderOptions lo;
  lo.batch_size = std::max(config.batch_size, 256);
  lo.shuffle = false;
  lo.drop_last = false;
  lo.limit = config.limit_test;
  lo.workers = config.workers;
  auto loader = data::make_loader(config.dataset, config.data_dir, data::Split::Test,
                                  dataset_options(config), lo);
  record_normalisation(config, *loader);
  return loader;
}

}  // namespace pactq::train
