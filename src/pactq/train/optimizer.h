// The optimiser of the PACT recipe: SGD (momentum) or Adam (eps 1e-5), with
// every learned alpha in its own parameter group whose weight decay is the
// alpha decay (the paper's lambda_alpha, default: the weight decay); the other
// parameters use the weight decay. alpha shares the optimiser and learning
// rate with the weights (PACT.md section 1).
#pragma once
#include <torch/optim/optimizer.h>

#include <memory>

#include "pactq/models/model.h"
#include "pactq/train/config.h"

namespace pactq::train {

// Group 0: every trainable parameter but the alphas; group 1 (only when the
// model has learned alphas): the alphas.
std::unique_ptr<torch::optim::Optimizer> make_optimizer(const TrainConfig& config,
                                                        models::QuantModel& model);

// Moves the optimiser's state tensors (SGD momentum, Adam moments) to
// `device`: checkpoints store them on the CPU and a resumed run may train
// elsewhere. Free when they are already there.
void move_optimizer_state(torch::optim::Optimizer& optimizer, const at::Device& device);

}  // namespace pactq::train
