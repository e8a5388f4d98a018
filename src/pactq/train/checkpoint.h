// Training checkpoints (.pt, LibTorch archives), written atomically: a run
// killed at any moment leaves the previous complete file in place.
//
// Contents: "config" (the TrainConfig as JSON text), "model/<name>" for every
// parameter and buffer, "optimizer" (its full state), "state" (epoch, step,
// position in the epoch, running sums of the epoch, best accuracy).
#pragma once
#include <torch/nn/module.h>
#include <torch/optim/optimizer.h>

#include <cstdint>
#include <string>

#include "pactq/train/config.h"

namespace pactq::train {

struct TrainState {
  int64_t epoch = 0;           // epoch in progress (0-based)
  int64_t batch_in_epoch = 0;  // batches of `epoch` already done
  int64_t global_step = 0;     // optimiser steps so far
  double best_top1 = -1;       // best test top-1 so far (%)
  // running sums of the epoch in progress (for a mid-epoch resume)
  double epoch_loss_sum = 0;
  int64_t epoch_correct = 0;
  int64_t epoch_seen = 0;
};

void save_checkpoint(const std::string& path, const TrainConfig& config, torch::nn::Module& model,
                     torch::optim::Optimizer* optimizer, const TrainState& state);

struct LoadedCheckpoint {
  TrainConfig config;
  TrainState state;
};

// Reads only the config and state (cheap: to rebuild the model first).
LoadedCheckpoint read_checkpoint_header(const std::string& path);

// Loads weights (and the optimiser state when optimizer != nullptr) into
// already-built objects; throws naming the file and the first mismatch.
void load_checkpoint(const std::string& path, torch::nn::Module& model,
                     torch::optim::Optimizer* optimizer);

}  // namespace pactq::train
