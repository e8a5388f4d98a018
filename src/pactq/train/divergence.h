// Naming where a diverging run went non-finite, for the message that stops it.
#pragma once
#include <ATen/ATen.h>

#include <string>

#include "pactq/models/model.h"

namespace pactq::train {

// Where a NaN/Inf first appears for this batch: a parameter or buffer holding
// one ("parameter 'conv2.weight'"), else the first activation whose input holds
// one after a forward pass in the model's current mode ("the input of
// activation 'layer1.0.act1'"), else the logits. Empty when all are finite.
// Runs a forward pass without gradients (BatchNorm statistics may move: call
// it only on the way out).
std::string locate_non_finite(models::QuantModel& model, const at::Tensor& images);

}  // namespace pactq::train
