// From a TrainConfig to a ready model: build from the zoo, apply the precision
// policy, load float weights by name (--init-from).
#pragma once
#include <string>
#include <vector>

#include "pactq/models/model.h"
#include "pactq/train/config.h"

namespace pactq::train {

// Builds config.model with num_classes and applies config's precision policy.
models::QuantModelPtr build_model(const TrainConfig& config, int64_t num_classes);

// A CPU model with `model`'s parameters and buffers (same config and
// classes), for what reads host memory (export, the deployed evaluation).
models::QuantModelPtr cpu_copy(const TrainConfig& config, int64_t num_classes,
                               torch::nn::Module& model);

struct InitReport {
  std::vector<std::string> loaded;
  std::vector<std::string> missing;     // in the model, not in the file (alphas are expected here)
  std::vector<std::string> unexpected;  // in the file, not in the model
  std::string summary() const;
};

// Loads every same-named parameter and buffer from a safetensors file; a
// shape mismatch is an error naming the tensor and the file.
InitReport load_float_weights(torch::nn::Module& model, const std::string& path);

// Normalisation recorded in a safetensors file's metadata (normalize_mean /
// normalize_std), empty if absent.
std::pair<std::vector<float>, std::vector<float>> normalization_from_metadata(
    const std::string& path);

}  // namespace pactq::train
