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

// Shuffled, augmented, drop_last training loader (without the --val-split
// images, which a permutation fixed by --seed holds out).
std::unique_ptr<data::DataLoader> make_train_loader(TrainConfig& config);
// In-order test loader (config.limit_test images when > 0).
std::unique_ptr<data::DataLoader> make_test_loader(TrainConfig& config);
// In-order loader of the --val-split images, unaugmented; nullptr without a split.
std::unique_ptr<data::DataLoader> make_val_loader(TrainConfig& config);
// The training, test and validation loaders build batches in pinned memory
// when config.device resolves to CUDA (copied to it non-blocking).
// Raw pixels in [0, 1] (what the deployed model takes) of the test set, or of
// the validation split; same images and order as make_test/val_loader. Never
// pinned: the deployed model runs on the host.
std::unique_ptr<data::DataLoader> make_pixel_loader(const TrainConfig& config, bool validation);

}  // namespace pactq::train
