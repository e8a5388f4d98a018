#include "pactq/train/data_setup.h"

#include "pactq/common/format.h"
#include "pactq/train/device.h"

#include <algorithm>
#include <stdexcept>

#include "pactq/data/registry.h"
#include "pactq/models/registry.h"
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
  d.train_files = config.train_files;
  if (data::canonical_dataset_name(config.dataset) == "synthetic") {
    // Random images of exactly the shape the model takes.
    const models::InputShape in = models::model_info(config.model).input;
    d.synthetic = {in.channels, in.height, in.width,
                   config.num_classes > 0 ? config.num_classes : 10};
  }
  return d;
}

namespace {
void record_normalisation(TrainConfig& config, const data::DataLoader& loader) {
  // Images the network cannot take would fail deep inside its first convolution.
  const data::DatasetInfo given = loader.dataset().info();
  const models::InputShape wanted = models::model_info(config.model).input;
  if (given.channels != wanted.channels) {
    const std::string shape =
        given.height > 0 ? pactq::format("{}x{}x{}", given.channels, given.height, given.width)
                         : pactq::format("{} channels", given.channels);
    throw std::invalid_argument(pactq::format(
        "--model {} expects {}x{}x{} images (CxHxW), --dataset {} gives {}", config.model,
        wanted.channels, wanted.height, wanted.width, given.name, shape));
  }
  if (config.mean.empty()) {
    const data::DatasetInfo info = loader.dataset().info();
    config.mean = info.mean;
    config.std = info.std;
  }
}
}  // namespace

namespace {
// In a data-parallel run each rank reads its own shard (data/loader.h). A
// config read back from a checkpoint has a world size but no rank: unsharded.
void set_shard(data::LoaderOptions& lo, const TrainConfig& config) {
  if (config.dist.world_size > 1 && config.dist.rank >= 0) {
    lo.shard_count = config.dist.world_size;
    lo.shard_index = config.dist.rank;
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
  lo.holdout = config.val_split;
  lo.holdout_seed = config.seed;
  lo.pin_memory = pin_batches_for(resolve_device(config.device));
  set_shard(lo, config);
  auto loader = data::make_loader(config.dataset, config.data_dir, data::Split::Train,
                                  dataset_options(config), lo);
  record_normalisation(config, *loader);
  return loader;
}

namespace {
data::LoaderOptions eval_loader_options(const TrainConfig& config, bool validation) {
  data::LoaderOptions lo;
  set_shard(lo, config);  // each rank evaluates its share; the trainer sums them
  lo.batch_size = std::max(config.batch_size, 256);
  lo.shuffle = false;
  lo.drop_last = false;
  lo.workers = config.workers;
  if (validation) {
    lo.holdout = config.val_split;
    lo.holdout_seed = config.seed;
    lo.holdout_only = true;
  } else {
    lo.limit = config.limit_test;
  }
  return lo;
}
}  // namespace

std::unique_ptr<data::DataLoader> make_test_loader(TrainConfig& config) {
  data::LoaderOptions lo = eval_loader_options(config, false);
  lo.pin_memory = pin_batches_for(resolve_device(config.device));
  auto loader = data::make_loader(config.dataset, config.data_dir, data::Split::Test,
                                  dataset_options(config), lo);
  record_normalisation(config, *loader);
  return loader;
}

std::unique_ptr<data::DataLoader> make_val_loader(TrainConfig& config) {
  if (config.val_split <= 0) return nullptr;
  data::DatasetOptions d = dataset_options(config);
  d.augment = false;  // the training split through the evaluation pipeline
  data::LoaderOptions lo = eval_loader_options(config, true);
  lo.pin_memory = pin_batches_for(resolve_device(config.device));
  auto loader = data::make_loader(config.dataset, config.data_dir, data::Split::Train, d, lo);
  record_normalisation(config, *loader);
  return loader;
}

std::unique_ptr<data::DataLoader> make_pixel_loader(const TrainConfig& config, bool validation) {
  if (validation && config.val_split <= 0) return nullptr;
  if (config.mean.empty()) {
    throw std::logic_error("make_pixel_loader: the normalisation is not resolved yet");
  }
  TrainConfig c = config;
  data::DatasetOptions d = dataset_options(c);
  d.augment = false;
  d.mean.assign(config.mean.size(), 0.f);  // pixels in [0, 1]: v / 255
  d.std.assign(config.std.size(), 1.f);
  return data::make_loader(config.dataset, config.data_dir,
                           validation ? data::Split::Train : data::Split::Test, d,
                           eval_loader_options(config, validation));
}

}  // namespace pactq::train
