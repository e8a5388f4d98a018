#include "pactq/nn/activation_observer.h"

#include <algorithm>

namespace pactq::nn {
namespace {
thread_local ActivationObserver* innermost = nullptr;
}  // namespace

ActivationObserver::ActivationObserver() : outer_(innermost) {
  innermost = this;
}

ActivationObserver::~ActivationObserver() {
  innermost = outer_;
}

ActivationObserver* ActivationObserver::active() {
  return innermost;
}

at::Tensor sample_of(const at::Tensor& input, int64_t count) {
  at::NoGradGuard no_grad;
  const at::Tensor flat = input.detach().reshape({-1}).to(at::kFloat);
  const int64_t take = std::min<int64_t>(flat.numel(), count);
  const at::Tensor picked =
      take == flat.numel() ? flat.clone()
                           : flat.index_select(0, at::randperm(flat.numel()).narrow(0, 0, take));
  return picked.to(at::kCPU);
}

void NonFiniteProbe::observe(const PactReLUImpl& layer, const at::Tensor& input) {
  if (first_ == nullptr && !at::isfinite(input).all().item<bool>()) first_ = &layer;
}

}  // namespace pactq::nn
