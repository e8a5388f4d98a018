#include "pactq/train/optimizer.h"

#include <torch/optim/adam.h>
#include <torch/optim/sgd.h>

#include <vector>

#include "pactq/nn/alpha.h"

namespace pactq::train {

std::unique_ptr<torch::optim::Optimizer> make_optimizer(const TrainConfig& c,
                                                        models::QuantModel& model) {
  std::vector<at::Tensor> alphas;
  for (const auto& item : nn::learned_alphas(model)) alphas.push_back(item.second);
  std::vector<at::Tensor> others;
  for (const auto& p : model.parameters()) {
    if (!p.requires_grad()) continue;
    bool is_alpha = false;
    for (const auto& a : alphas) is_alpha = is_alpha || a.is_same(p);
    if (!is_alpha) others.push_back(p);
  }
  std::vector<torch::optim::OptimizerParamGroup> groups;
  if (c.optimizer == "adam") {
    auto opts = [&](double decay) {
      return std::make_unique<torch::optim::AdamOptions>(
          torch::optim::AdamOptions(c.lr).eps(1e-5).weight_decay(decay));
    };
    groups.emplace_back(others, opts(c.weight_decay));
    if (!alphas.empty()) groups.emplace_back(alphas, opts(c.resolved_alpha_decay()));
    return std::make_unique<torch::optim::Adam>(groups, torch::optim::AdamOptions(c.lr).eps(1e-5));
  }
  auto opts = [&](double decay) {
    return std::make_unique<torch::optim::SGDOptions>(
        torch::optim::SGDOptions(c.lr).momentum(c.momentum).weight_decay(decay));
  };
  groups.emplace_back(others, opts(c.weight_decay));
  if (!alphas.empty()) groups.emplace_back(alphas, opts(c.resolved_alpha_decay()));
  return std::make_unique<torch::optim::SGD>(groups,
                                             torch::optim::SGDOptions(c.lr).momentum(c.momentum));
}

}  // namespace pactq::train
