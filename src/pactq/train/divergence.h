// Naming where a diverging run went non-finite, for the message that stops it.
#pragma once
#include <ATen/ATen.h>

#include <string>

#include "pactq/models/model.h"

namespace pactq::train {

// Where a NaN/Inf first appears for this batch: a parameter or buffer holding
// one ("parameter 'conv2.weight'"), else the first activation whose input holds
// one after a forward pass in eval mode ("the input of activation
// 'layer1.0.act1'"), else the logits. Empty when all are finite. The forward
// pass changes nothing (no gradients, no BatchNorm statistics, no collective
// under sync BN) and the model's mode is restored.
std::string locate_non_finite(models::QuantModel& model, const at::Tensor& images);

}  // namespace pactq::train
