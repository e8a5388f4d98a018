// Running loss and accuracy of the training steps, accumulated on the device
// the step runs on: reading a CUDA scalar is a sync that stalls the queue, so
// the trainer reads them (take()) every few steps, not every step.
#pragma once
#include <ATen/ATen.h>

#include <cstdint>

namespace pactq::train {

class StepMetrics {
 public:
  explicit StepMetrics(const at::Device& device);

  // Adds one step's mean loss (times its batch size) and correct top-1 count;
  // no host read.
  void add(const at::Tensor& loss, const at::Tensor& logits, const at::Tensor& labels);

  struct Totals {
    double loss_sum = 0;  // sum over images of the loss (non-finite if any step's was)
    int64_t correct = 0;
    int64_t seen = 0;
    int64_t steps = 0;
  };
  // What was added since the last take(), in one host read; resets.
  Totals take();
  int64_t pending_steps() const { return steps_; }
  int64_t host_reads() const { return host_reads_; }  // for tests: the syncs it caused

 private:
  at::Tensor loss_sum_;  // double
  at::Tensor correct_;   // int64
  int64_t seen_ = 0;
  int64_t steps_ = 0;
  int64_t host_reads_ = 0;
};

}  // namespace pactq::train
