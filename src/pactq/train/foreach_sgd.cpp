#include "pactq/train/foreach_sgd.h"

#include <ATen/ATen.h>
#include <torch/optim/sgd.h>

#include <vector>

#include "pactq/common/torch_compat.h"

namespace pactq::train {

bool foreach_sgd_step(torch::optim::Optimizer& optimizer) {
  auto* sgd = dynamic_cast<torch::optim::SGD*>(&optimizer);
  if (sgd == nullptr) return false;
  struct Group {
    std::vector<at::Tensor> params, grads, buffers;
    double lr = 0, momentum = 0, weight_decay = 0;
  };
  std::vector<Group> groups;
  for (auto& group : sgd->param_groups()) {
    const auto& o = static_cast<const torch::optim::SGDOptions&>(group.options());
    if (o.nesterov() || o.dampening() != 0) return false;
    Group g;
    g.lr = o.lr();
    g.momentum = o.momentum();
    g.weight_decay = o.weight_decay();
    for (const at::Tensor& p : group.params()) {
      if (!p.grad().defined()) continue;
      if (g.momentum != 0) {
        auto* state =
            dynamic_cast<torch::optim::SGDParamState*>(compat::optimizer_param_state(*sgd, p));
        if (state == nullptr || !state->momentum_buffer().defined()) return false;
        g.buffers.push_back(state->momentum_buffer());
      }
      g.params.push_back(p);
      g.grads.push_back(p.grad());
    }
    groups.push_back(std::move(g));
  }
  at::NoGradGuard no_grad;
  for (Group& g : groups) {
    if (g.params.empty()) continue;
    if (g.weight_decay != 0) at::_foreach_add_(g.grads, g.params, g.weight_decay);
    if (g.momentum != 0) {
      at::_foreach_mul_(g.buffers, g.momentum);
      at::_foreach_add_(g.buffers, g.grads);
    }
    at::_foreach_add_(g.params, g.momentum != 0 ? g.buffers : g.grads, -g.lr);
  }
  return true;
}

void optimizer_step(torch::optim::Optimizer& optimizer, const at::Device& device) {
  if (device.is_cuda() && foreach_sgd_step(optimizer)) return;
  optimizer.step();
}

}  // namespace pactq::train
