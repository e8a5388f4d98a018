// BatchNorm as the models call it: the module's own forward, or, inside a
// SyncBatchNormScope while training, synchronised BatchNorm (the batch
// statistics of all data-parallel ranks together, as one process with the
// whole batch would compute them). nn does not know about processes: the
// scope hands in a function that sums a tensor over the ranks in place.
#pragma once
#include <ATen/ATen.h>

#include <functional>

namespace pactq::nn {

using StatsReducer = std::function<void(at::Tensor&)>;

// Makes batch_norm() synchronise through `reducer` on this thread until
// destroyed (the backward pass keeps the reducer it was given: it must
// outlive every backward of the forwards run in the scope).
class SyncBatchNormScope {
 public:
  explicit SyncBatchNormScope(StatsReducer* reducer);
  ~SyncBatchNormScope();
  SyncBatchNormScope(const SyncBatchNormScope&) = delete;
  SyncBatchNormScope& operator=(const SyncBatchNormScope&) = delete;

 private:
  StatsReducer* previous_;
};

StatsReducer* current_stats_reducer();

// Training-mode BatchNorm over the union of every rank's batch: per-channel
// sum, sum of squares and count are summed over ranks (differentiably: their
// gradients are summed over ranks in backward), and the running statistics
// move as PyTorch's do (unbiased variance).
at::Tensor sync_batch_norm(const at::Tensor& x, at::Tensor& running_mean, at::Tensor& running_var,
                           at::Tensor& num_batches_tracked, const at::Tensor& weight,
                           const at::Tensor& bias, double momentum, double eps,
                           StatsReducer& reducer);

// `bn` is a torch::nn::BatchNorm1d or BatchNorm2d holder.
template <typename Holder>
at::Tensor batch_norm(Holder& bn, const at::Tensor& x) {
  StatsReducer* reducer = current_stats_reducer();
  if (reducer == nullptr || !bn->is_training()) return bn->forward(x);
  return sync_batch_norm(x, bn->running_mean, bn->running_var, bn->num_batches_tracked, bn->weight,
                         bn->bias, bn->options.momentum().value_or(0.1), bn->options.eps(),
                         *reducer);
}

}  // namespace pactq::nn
