#include "pactq/nn/alpha.h"

#include <ATen/core/grad_mode.h>

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

at::Tensor alpha_l2_penalty(torch::nn::Module& model, double lambda) {
  at::Tensor total;
  for (const auto& [name, alpha] : learned_alphas(model)) {
    const at::Tensor term = alpha.square().sum();
    total = total.defined() ? total + term : term;
  }
  if (!total.defined()) return at::zeros({});
  return lambda * total;
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
  const auto alphas = learned_alphas(model);
  if (alphas.empty()) return;
  at::NoGradGuard no_grad;
  std::vector<at::Tensor> values;
  values.reserve(alphas.size());
  for (const auto& item : alphas) values.push_back(item.second.reshape({-1}));
  const at::Tensor all = at::cat(values).to(at::kCPU);
  if (!at::isfinite(all).all().item<bool>()) {
    const auto* data = all.data_ptr<float>();
    for (size_t i = 0; i < alphas.size(); ++i) {
      if (!std::isfinite(data[i])) {
        throw std::runtime_error("alpha of layer '" + alphas[i].first + "' became " +
                                 std::to_string(data[i]) +
                                 " (diverging training: lower the learning rate or alpha init)");
      }
    }
  }
  for (const auto& item : alphas) item.second.clamp_min_(floor);
}

}  // namespace pactq::nn
