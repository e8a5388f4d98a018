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

void move_optimizer_state(torch::optim::Optimizer& optimizer, const at::Device& device) {
  auto move = [&](const at::Tensor& t) { return t.defined() ? t.to(device) : t; };
  for (auto& item : optimizer.state()) {
    if (auto* s = dynamic_cast<torch::optim::SGDParamState*>(item.second.get())) {
      s->momentum_buffer(move(s->momentum_buffer()));
    } else if (auto* a = dynamic_cast<torch::optim::AdamParamState*>(item.second.get())) {
      a->exp_avg(move(a->exp_avg()));
      a->exp_avg_sq(move(a->exp_avg_sq()));
      a->max_exp_avg_sq(move(a->max_exp_avg_sq()));
    }
  }
}

}  // namespace pactq::train
