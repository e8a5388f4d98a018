// Helpers for the PACT clipping levels of a whole model.
//
// Regularisation: the trainer puts every alpha in its own optimiser parameter
// group whose weight decay is --alpha-decay (lambda). With SGD that adds
// lambda * alpha to alpha's gradient, i.e. the penalty (lambda / 2) * alpha^2;
// alpha_l2_penalty gives the explicit loss term lambda * sum(alpha^2) for
// users who prefer it (twice the group's effective strength).
#pragma once
#include <ATen/ATen.h>
#include <torch/nn/module.h>

#include <string>
#include <utility>
#include <vector>

namespace pactq::nn {

// (module name, alpha) of every PactReLU whose alpha is learned.
std::vector<std::pair<std::string, at::Tensor>> learned_alphas(torch::nn::Module& model);

at::Tensor alpha_l2_penalty(torch::nn::Module& model, double lambda);

// Where alpha values enter from outside (an --init-from file, a checkpoint):
// raises std::invalid_argument naming `source` and the layer when the alpha of
// any clipping activation (learned or fixed) is not positive and finite.
void check_alphas(torch::nn::Module& model, const std::string& source);

// After an optimiser step: raises std::runtime_error naming the layer when an
// alpha is NaN or Inf, and clamps every alpha to at least `floor`. One host
// sync for the whole model.
void guard_alphas(torch::nn::Module& model, double floor = 1e-3);

}  // namespace pactq::nn
