#include "pactq/train/step_metrics.h"

#include <ATen/core/grad_mode.h>

namespace pactq::train {

StepMetrics::StepMetrics(const at::Device& device)
    : loss_sum_(at::zeros({}, at::TensorOptions(at::kDouble).device(device))),
      correct_(at::zeros({}, at::TensorOptions(at::kLong).device(device))) {}

void StepMetrics::add(const at::Tensor& loss, const at::Tensor& logits, const at::Tensor& labels) {
  at::NoGradGuard no_grad;
  const int64_t n = labels.size(0);
  // In double, as the host sum was: loss * n rounded the same way.
  loss_sum_.add_(loss.detach().to(at::kDouble) * static_cast<double>(n));
  correct_.add_(logits.detach().argmax(1).eq(labels).sum());
  seen_ += n;
  ++steps_;
}

StepMetrics::Totals StepMetrics::take() {
  Totals t;
  t.seen = seen_;
  t.steps = steps_;
  if (steps_ > 0) {
    ++host_reads_;
    // One copy for both (int64 counts below 2^53 are exact in double).
    const at::Tensor host = at::stack({loss_sum_, correct_.to(at::kDouble)}).to(at::kCPU);
    t.loss_sum = host[0].item<double>();
    t.correct = static_cast<int64_t>(host[1].item<double>());
    loss_sum_.zero_();
    correct_.zero_();
  }
  seen_ = 0;
  steps_ = 0;
  return t;
}

}  // namespace pactq::train
