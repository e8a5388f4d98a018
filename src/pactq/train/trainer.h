// The training loop: data -> model -> SGD/Adam with the PACT recipe, per-epoch
// evaluation, metrics (metrics.csv, metrics.jsonl), atomic checkpoints
// (last.pt, best.pt) and exact resume.
//
// alpha regularisation: every learned alpha sits in its own optimiser
// parameter group with weight decay = alpha_decay (see nn/alpha.h); the other
// parameters use weight_decay. alpha uses the same optimiser and learning rate
// as the weights (PACT.md).
#pragma once
#include <string>

#include "pactq/train/config.h"

namespace pactq::train {

struct TrainSummary {
  double final_test_top1 = 0;
  double best_test_top1 = 0;
  double final_test_loss = 0;
  int64_t steps = 0;
  int64_t epochs_done = 0;
  double seconds = 0;
  double images_per_second = 0;  // training, last epoch
  double data_wait_share = 0;    // share of training time spent waiting for data
  std::string out_dir;
};

// Throws on invalid configuration or data (messages name the option or file)
// and on a NaN/Inf loss (after keeping the last good checkpoint).
TrainSummary run_training(TrainConfig config);

}  // namespace pactq::train
