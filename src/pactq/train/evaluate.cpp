#include "pactq/train/evaluate.h"

#include <ATen/ATen.h>
#include <ATen/core/grad_mode.h>

#include <chrono>

#include "pactq/train/device.h"

namespace pactq::train {

at::Tensor count_topk_tensor(const at::Tensor& logits, const at::Tensor& labels, int64_t k) {
  k = std::min<int64_t>(k, logits.size(1));
  const at::Tensor top = std::get<1>(logits.topk(k, 1));
  return top.eq(labels.unsqueeze(1)).any(1).sum();
}

int64_t count_topk(const at::Tensor& logits, const at::Tensor& labels, int64_t k) {
  return count_topk_tensor(logits, labels, k).item<int64_t>();
}

EvalResult evaluate(torch::nn::Module& model,
                    const std::function<at::Tensor(const at::Tensor&)>& forward,
                    data::DataLoader& loader, int64_t epoch) {
  const auto start = std::chrono::steady_clock::now();
  const bool was_training = model.is_training();
  model.eval();
  at::NoGradGuard no_grad;
  EvalResult r;
  const at::Device device = module_device(model);
  // Per batch: the float loss widened to double, as the host sum did.
  at::Tensor loss_sum = at::zeros({}, at::TensorOptions(at::kDouble).device(device));
  at::Tensor top1 = at::zeros({}, at::TensorOptions(at::kLong).device(device));
  at::Tensor top5 = at::zeros({}, at::TensorOptions(at::kLong).device(device));
  loader.start_epoch(epoch);
  while (auto batch = loader.next()) {
    const at::Tensor images = batch->images.to(device, /*non_blocking=*/true);
    const at::Tensor labels = batch->labels.to(device, /*non_blocking=*/true);
    const at::Tensor logits = forward(images);
    loss_sum.add_(at::cross_entropy_loss(logits, labels, {}, at::Reduction::Sum).to(at::kDouble));
    top1.add_(count_topk_tensor(logits, labels, 1));
    top5.add_(count_topk_tensor(logits, labels, 5));
    r.count += batch->labels.size(0);
  }
  model.train(was_training);
  const double loss_total = loss_sum.item<double>();
  r.correct = top1.item<int64_t>();
  const int64_t top5_total = top5.item<int64_t>();
  if (r.count > 0) {
    r.loss = loss_total / r.count;
    r.top1 = 100.0 * r.correct / r.count;
    r.top5 = 100.0 * top5_total / r.count;
  }
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return r;
}

}  // namespace pactq::train
