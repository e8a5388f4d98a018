// Loaders configured from a TrainConfig, shared by training, evaluation,
// export verification and benchmarks so they all see identical inputs.
#pragma once
#include <memory>

#include "pactq/data/loader.h"
#include "pactq/train/config.h"

namespace pactq::train {

// Normalisation: config.mean/std when set, else (for --init-from) the file's
// metadata, else the dataset's default. Writes the resolved values back.
data::DatasetOptions dataset_options(TrainConfig& config);

// Shuffled, augmented, drop_last training loader.
std::unique_ptr<data::DataLoader> make_train_loader(TrainConfig& config);
// In-order test loader (config.limit_test images when > 0).
std::unique_ptr<data::DataLoader> make_test_loader(TrainConfig& config);

}  // namespace pactq::train
