// The trainer's side of data parallelism (distributed/): one object that is
// inert in a one-process run. Rank 0 leads: it alone writes metrics and
// checkpoints, its checkpoint is what every rank resumes from (sent over the
// group, so no shared file system is needed), and its weights and BatchNorm
// statistics are the ones every rank starts from and evaluates with.
#pragma once
#include <ATen/ATen.h>
#include <torch/nn/module.h>

#include <memory>
#include <string>

#include "pactq/distributed/gradient_reducer.h"
#include "pactq/distributed/options.h"
#include "pactq/distributed/process_group.h"
#include "pactq/nn/batch_norm.h"
#include "pactq/train/checkpoint.h"
#include "pactq/train/evaluate.h"

namespace pactq::train {

class DataParallel {
 public:
  // Joins the group when options.enabled() (throws DistError naming the
  // ranks that did not join within the timeout).
  DataParallel(const distributed::DistOptions& options, const at::Device& device);
  ~DataParallel();

  bool enabled() const { return group_ != nullptr; }
  int rank() const { return group_ ? group_->rank() : 0; }
  int size() const { return group_ ? group_->size() : 1; }
  bool lead() const { return rank() == 0; }
  std::string backend() const { return group_ ? group_->backend() : "none"; }

  // A path every rank can read rank 0's `last_path` from, or "" when rank 0
  // is not resuming (`resume` false or no file): rank 0's own file, a private
  // copy elsewhere.
  std::string share_checkpoint(const std::string& last_path, bool resume);

  // Rank 0's parameters and buffers (and the PACT alphas among them) to all.
  void broadcast_model(torch::nn::Module& model);
  // Rank 0's buffers (BatchNorm running statistics, kept per rank in training).
  void broadcast_buffers(torch::nn::Module& model);

  // Averages gradients over ranks from now on (hooks on `model`'s trainable
  // parameters); bracket every loss.backward() with these two.
  void attach(torch::nn::Module& model);
  void before_backward();
  void after_backward();
  // Seconds waiting on gradient communication backward did not hide, per step.
  double comm_wait_per_step() const;

  // Sums BatchNorm statistics over ranks (--sync-bn; nn/batch_norm.h).
  nn::StatsReducer* batch_norm_reducer() { return &bn_reducer_; }

  // Evaluation over each rank's shard, summed into the whole set's result.
  EvalResult sum(const EvalResult& local);
  // The epoch's running loss/accuracy sums over all ranks into rank 0's
  // `state`, the others' zeroed (so a later sum counts each image once).
  void gather_epoch_sums(TrainState& state);
  // Rank 0's `value` on every rank.
  double from_lead(double value);
  // Whether any rank's `local` is true, on every rank (one small all-reduce):
  // a decision such as stopping on Ctrl-C must be taken by all ranks at the
  // same step, or their next collectives pair up wrongly or hang.
  bool any(bool local);

  // Waits for every rank, then says this rank ends normally.
  void finish();

 private:
  // Host tensors the collectives carry (sizes, sums, checkpoint bytes), on
  // the device NCCL needs them on; back on the host afterwards.
  at::Tensor for_group(const at::Tensor& host) const;

  at::Device device_;
  std::unique_ptr<distributed::ProcessGroup> group_;
  std::unique_ptr<distributed::GradientReducer> reducer_;
  std::string private_copy_;
  nn::StatsReducer bn_reducer_;
};

}  // namespace pactq::train
