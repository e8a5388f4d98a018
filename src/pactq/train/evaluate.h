// Evaluation of a classifier over a data loader: loss, top-1, top-5.
#pragma once
#include <torch/nn/module.h>

#include <functional>

#include "pactq/data/loader.h"

namespace pactq::train {

struct EvalResult {
  double loss = 0;  // mean cross-entropy
  double top1 = 0;  // percent
  double top5 = 0;  // percent
  int64_t correct = 0;
  int64_t count = 0;
  double seconds = 0;
};

// Puts the model in eval mode for the pass and restores the previous mode.
// Batches go to the model's device (train/device.h); the sums stay there
// until the end of the pass (one host read, not three per batch).
EvalResult evaluate(torch::nn::Module& model,
                    const std::function<at::Tensor(const at::Tensor&)>& forward,
                    data::DataLoader& loader, int64_t epoch = 0);

// Number of rows whose label is among the k largest logits.
int64_t count_topk(const at::Tensor& logits, const at::Tensor& labels, int64_t k);
// The same as a 0-dim int64 tensor on the logits' device (no host read).
at::Tensor count_topk_tensor(const at::Tensor& logits, const at::Tensor& labels, int64_t k);

}  // namespace pactq::train
