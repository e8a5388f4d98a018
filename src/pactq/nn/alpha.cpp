#include "pactq/nn/alpha.h"

#include <ATen/core/grad_mode.h>

#include <algorithm>
#include <cmath>
#include <stdexcept>

#include "pactq/nn/pact_relu.h"

namespace pactq::nn {

std::vector<std::pair<std::string, at::Tensor>> learned_alphas(torch::nn::Module& model) {
  std::vector<std::pair<std::string, at::Tensor>> out;
  for (const auto& item : model.named_modules("", /*include_self=*/false)) {
    if (auto* act = dynamic_cast<PactReLUImpl*>(item.value().get())) {
      if (act->kind() == ActivationKind::kPact) out.emplace_back(item.key(), act->alpha);
    }
  }
  return out;
}

void check_alphas(torch::nn::Module& model, const std::string& source) {
  for (const auto& item : model.named_modules("", /*include_self=*/false)) {
    const auto* act = dynamic_cast<const PactReLUImpl*>(item.value().get());
    if (act == nullptr || act->kind() == ActivationKind::kRelu) continue;
    const at::Tensor values = act->alpha.detach().to(at::kCPU, at::kDouble).reshape({-1});
    for (int64_t i = 0; i < values.numel(); ++i) {
      const double a = values[i].item<double>();
      if (!(a > 0.0) || !std::isfinite(a)) {
        throw std::invalid_argument(source + ": alpha of layer '" + item.key() + "' is " +
                                    std::to_string(a) + " (expected a positive, finite value)");
      }
    }
  }
}

void guard_alphas(torch::nn::Module& model, double floor) {
  AlphaGuard(model, 1, floor).after_step();
}

AlphaGuard::AlphaGuard(torch::nn::Module& model, int64_t check_every, double floor)
    : alphas_(learned_alphas(model)),
      check_every_(std::max<int64_t>(1, check_every)),
      floor_(floor) {
  for (size_t i = 0; i < alphas_.size(); ++i) {
    layer_of_.insert(layer_of_.end(), static_cast<size_t>(alphas_[i].second.numel()),
                     static_cast<int64_t>(i));
  }
}

void AlphaGuard::after_step() {
  if (alphas_.empty()) return;
  at::NoGradGuard no_grad;
  std::vector<at::Tensor> values;
  values.reserve(alphas_.size());
  for (const auto& item : alphas_) values.push_back(item.second.detach().reshape({-1}));
  const at::Tensor all = at::cat(values);
  const at::Tensor bad = at::isfinite(all).logical_not_();
  if (!seen_bad_.defined()) {
    seen_bad_ = bad;
    first_bad_ = all;
  } else {
    first_bad_ = at::where(seen_bad_, first_bad_, all);  // keeps the first bad value
    seen_bad_.logical_or_(bad);
  }
  // A non-finite alpha is recorded above and reported at the next check; until
  // then it takes the floor, so the steps in between run (pact() refuses a NaN
  // alpha on the CPU) and the divergence is reported here, naming the layer.
  for (const auto& item : alphas_) {
    item.second.detach().nan_to_num_(floor_, floor_, floor_).clamp_min_(floor_);
  }
  if (++steps_ % check_every_ == 0) check();
}

void AlphaGuard::check() {
  if (!seen_bad_.defined()) return;
  ++host_reads_;
  // One copy to the host: the flags and the values side by side.
  const at::Tensor host =
      at::stack({seen_bad_.to(at::kDouble), first_bad_.to(at::kDouble)}).to(at::kCPU);
  seen_bad_ = at::Tensor();
  first_bad_ = at::Tensor();
  const auto* flags = host.data_ptr<double>();
  const int64_t n = host.size(1);
  for (int64_t i = 0; i < n; ++i) {
    if (flags[i] != 0) {
      throw std::runtime_error("alpha of layer '" +
                               alphas_[static_cast<size_t>(layer_of_[i])].first + "' became " +
                               std::to_string(flags[n + i]) +
                               " (diverging training: lower the learning rate or alpha init)");
    }
  }
}

}  // namespace pactq::nn
