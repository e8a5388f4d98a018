#include "pactq/train/evaluate.h"

#include <ATen/ATen.h>
#include <ATen/core/grad_mode.h>

#include <chrono>

namespace pactq::train {

int64_t count_topk(const at::Tensor& logits, const at::Tensor& labels, int64_t k) {
  k = std::min<int64_t>(k, logits.size(1));
  const at::Tensor top = std::get<1>(logits.topk(k, 1));
  return top.eq(labels.unsqueeze(1)).any(1).sum().item<int64_t>();
}

EvalResult evaluate(torch::nn::Module& model,
                    const std::function<at::Tensor(const at::Tensor&)>& forward,
                    data::DataLoader& loader, int64_t epoch) {
  const auto start = std::chrono::steady_clock::now();
  const bool was_training = model.is_training();
  model.eval();
  at::NoGradGuard no_grad;
  EvalResult r;
  double loss_sum = 0;
  int64_t top5 = 0;
  loader.start_epoch(epoch);
  while (auto batch = loader.next()) {
    const at::Tensor logits = forward(batch->images);
    loss_sum +=
        at::cross_entropy_loss(logits, batch->labels, {}, at::Reduction::Sum).item<double>();
    r.correct += count_topk(logits, batch->labels, 1);
    top5 += count_topk(logits, batch->labels, 5);
    r.count += batch->labels.size(0);
  }
  model.train(was_training);
  if (r.count > 0) {
    r.loss = loss_sum / r.count;
    r.top1 = 100.0 * r.correct / r.count;
    r.top5 = 100.0 * top5 / r.count;
  }
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return r;
}

}  // namespace pactq::train
