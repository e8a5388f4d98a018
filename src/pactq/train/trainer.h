// The training loop: data -> model -> SGD/Adam with the PACT recipe, per-epoch
// evaluation, metrics (metrics.csv, metrics.jsonl), atomic checkpoints
// (last.pt, best.pt) and exact resume.
//
// alpha regularisation: every learned alpha sits in its own optimiser
// parameter group with weight decay = alpha_decay (see nn/alpha.h); the other
// parameters use weight_decay. alpha uses the same optimiser and learning rate
// as the weights (PACT.md).
#pragma once
#include <functional>
#include <string>
#include <vector>

#include "pactq/data/loader.h"
#include "pactq/models/model.h"
#include "pactq/train/config.h"
#include "pactq/train/evaluate.h"

namespace pactq::train {

struct TrainSummary {
  double final_test_top1 = 0;
  double final_test_top1_deployed = -1;  // -1: not measured (no --eval-deployed)
  double final_val_top1 = -1;            // -1: no --val-split
  // The best epoch's accuracy by the metric best.pt is chosen by: validation
  // when there is a split, else test; deployed when measured.
  double best_top1 = 0;
  double final_test_loss = 0;
  int64_t steps = 0;
  int64_t epochs_done = 0;
  double seconds = 0;
  double images_per_second = 0;  // training, last epoch
  double data_wait_share = 0;    // share of training time spent waiting for data
  int world_size = 1;            // processes that trained together
  int rank = 0;                  // this one (rank 0 reports)
  // Per step: gradient communication backward did not hide (data parallel).
  double comm_wait_seconds_per_step = 0;
  std::string out_dir;
};

// The deployed model's accuracy (export/deployed_eval.h: evaluate_deployed),
// handed in by the caller so that training does not depend on the exporter.
using DeployedEvaluator =
    std::function<EvalResult(models::QuantModel& model, const std::vector<float>& mean,
                             const std::vector<float>& std, data::DataLoader& pixels)>;

// Throws on invalid configuration or data (messages name the option or file)
// and on a NaN/Inf loss (after keeping the last good checkpoint).
// config.eval_deployed needs `deployed`.
TrainSummary run_training(TrainConfig config, const DeployedEvaluator& deployed = {});

}  // namespace pactq::train
