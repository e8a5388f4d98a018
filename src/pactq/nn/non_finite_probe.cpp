#include "pactq/nn/non_finite_probe.h"

namespace pactq::nn {
namespace {
thread_local NonFiniteProbe* active_probe = nullptr;
}  // namespace

NonFiniteProbe::NonFiniteProbe() : outer_(active_probe) {
  active_probe = this;
}

NonFiniteProbe::~NonFiniteProbe() {
  active_probe = outer_;
}

void NonFiniteProbe::observe(const torch::nn::Module& layer, const at::Tensor& input) {
  NonFiniteProbe* probe = active_probe;
  if (probe == nullptr || probe->first_ != nullptr) return;
  if (!at::isfinite(input).all().item<bool>()) probe->first_ = &layer;
}

}  // namespace pactq::nn
