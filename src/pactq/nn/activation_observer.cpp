#include "pactq/nn/activation_observer.h"

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

void NonFiniteProbe::observe(const PactReLUImpl& layer, const at::Tensor& input) {
  if (first_ == nullptr && !at::isfinite(input).all().item<bool>()) first_ = &layer;
}

}  // namespace pactq::nn
