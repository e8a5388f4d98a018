#include "pactq/train/divergence.h"

#include <ATen/core/grad_mode.h>

#include "pactq/nn/activation_observer.h"
#include "pactq/nn/pact_relu.h"

namespace pactq::train {
namespace {
bool all_finite(const at::Tensor& t) {
  return !t.is_floating_point() || at::isfinite(t).all().item<bool>();
}
}  // namespace

std::string locate_non_finite(models::QuantModel& model, const at::Tensor& images) {
  for (const auto& p : model.named_parameters()) {
    if (!all_finite(p.value())) return "parameter '" + p.key() + "'";
  }
  for (const auto& b : model.named_buffers()) {
    if (!all_finite(b.value())) return "buffer '" + b.key() + "'";
  }
  at::NoGradGuard no_grad;
  nn::NonFiniteProbe probe;
  // In eval mode: BatchNorm uses its running statistics, so the probe moves no
  // statistics and, under --sync-bn, issues no collective that only this rank
  // would enter (it runs on the rank that saw the non-finite loss).
  const bool was_training = model.is_training();
  model.eval();
  at::Tensor logits;
  try {
    logits = model.forward(images);
  } catch (...) {
    model.train(was_training);
    throw;
  }
  model.train(was_training);
  if (probe.first() != nullptr) {
    for (const auto& item : model.named_modules("", /*include_self=*/false)) {
      if (item.value().get() == static_cast<const torch::nn::Module*>(probe.first())) {
        return "the input of activation '" + item.key() + "'";
      }
    }
    return "the input of an activation";
  }
  if (!all_finite(logits)) return "the logits (last layer)";
  return "";
}

}  // namespace pactq::train
