// torch::optim::SGD's update as multi-tensor (_foreach) ops: a few kernels
// per parameter group instead of about four per parameter. On a GPU, where a
// ResNet20 step is launch-bound, that is most of the optimiser's cost.
#pragma once
#include <c10/core/Device.h>
#include <torch/optim/optimizer.h>

namespace pactq::train {

// One SGD step of `optimizer`, the same arithmetic as its own step()
// (weight decay, then momentum, then lr) and the same state (its momentum
// buffers), so checkpoints and the two steps interchange. Returns false, and
// changes nothing, where it does not apply: another optimiser, nesterov or
// dampening, or a parameter without a momentum buffer yet (the first step
// creates them: run the optimiser's own step() then). Adds the weight decay
// to the gradients in place (the next backward writes them afresh).
bool foreach_sgd_step(torch::optim::Optimizer& optimizer);

// The update a training step takes on `device`: foreach_sgd_step on CUDA
// where it applies, else the optimiser's own step() (on the CPU the loop
// costs nothing, and step() keeps earlier runs' numbers).
void optimizer_step(torch::optim::Optimizer& optimizer, const at::Device& device);

}  // namespace pactq::train
