// --alpha-init calibrate: each clipping level from its input's statistics in
// the initial model (after --init-from), on the first training batches.
#pragma once
#include <vector>

#include "pactq/data/loader.h"
#include "pactq/models/model.h"
#include "pactq/nn/alpha_calibration.h"
#include "pactq/train/config.h"

namespace pactq::train {

// Runs config.calibration_batches batches of epoch 0 (as the loader builds
// them, without touching its state) through the model in training mode with
// the activations as plain ReLUs, then sets every alpha. Restores the mode and
// the BatchNorm running statistics.
std::vector<nn::AlphaCalibrator::LayerResult> calibrate_alphas(models::QuantModel& model,
                                                               const data::DataLoader& loader,
                                                               const TrainConfig& config);

}  // namespace pactq::train
