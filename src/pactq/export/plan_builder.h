// The plan builder: a trained (fake-quantized) model of the zoo -> an
// ExportPlan of runtime nodes. The model describes its own topology through
// its registered lowering (models/lowering.h); the builder folds each call
// into one runtime node.
//
//   ExportPlan plan = build_export_plan(*model, mean, std);
//   plan.write("model.pqm", metadata);
//
// Folding (the runtime's two paths, runtime/graph.h):
//   integer path (codes weights, codes input):
//       out_scale = gamma / sigma * (w_scale / n_w) * (alpha_in / n_in)
//   float path (float weights or float input):
//       out_scale = gamma / sigma
//   out_bias = beta - gamma * mu / sigma + gamma / sigma * conv_bias
//   sigma = sqrt(running_var + eps) (eval statistics); computed in double, stored float32.
// Each PactReLU becomes the output spec of the node that feeds it: quantized ->
// CODES(bits, alpha) with alpha the float32 parameter itself; full precision ->
// FLOAT clip(alpha); relu -> FLOAT relu. Pre-activation BN + act after a
// residual sum become an `affine` node.
#pragma once

#include <vector>

#include "pactq/export/export_plan.h"
#include "pactq/models/model.h"

namespace pactq::export_ {

// Puts the model in eval mode. mean/std: the normalisation the input node
// records (one value per input channel; empty = 0 / 1). Throws
// std::invalid_argument for models without a lowering or unsupported settings.
ExportPlan build_export_plan(models::QuantModel& model, std::vector<float> mean = {},
                             std::vector<float> std = {});

}  // namespace pactq::export_
