// The training options shared by `pactq train`, `pactq eval` and `pactq bench`,
// bound to a TrainConfig.
#pragma once
#include <CLI/CLI.hpp>

#include "pactq/train/config.h"

namespace pactq::cli {

// Model, data and precision options (what defines the network and its input).
void add_model_options(CLI::App& cmd, train::TrainConfig& c);
// Optimisation and run options (only `train`).
void add_optimisation_options(CLI::App& cmd, train::TrainConfig& c);
// Data-parallel options (only `train`); unset ones come from torchrun's
// environment (distributed/options.h).
void add_distributed_options(CLI::App& cmd, train::TrainConfig& c);

}  // namespace pactq::cli
