// Layer folding shared by every deployable form of a model (the .pqm plan
// builder, the ONNX exporter): an eval BatchNorm plus the layer's bias as a
// per-channel affine, a layer's integer weight codes and scale, and an
// activation's output spec. One definition, so every format stores the same
// codes and the same folded constants.
#pragma once
#include <ATen/ATen.h>
#include <torch/nn/modules/batchnorm.h>

#include <cstdint>
#include <vector>

#include "pactq/export/export_plan.h"
#include "pactq/nn/pact_relu.h"
#include "pactq/nn/quantized_weight.h"
#include "pactq/runtime/graph.h"

namespace pactq::export_ {

// Per-channel affine of an eval-mode BatchNorm and a preceding layer's bias:
// y = scale * z + bias, sigma = sqrt(running_var + eps), in double.
struct Fold {
  std::vector<double> scale, bias;
};

// A null `bn` gives scale 1 and the layer's bias (or 0). Throws
// std::invalid_argument for BN without running statistics or a channel mismatch.
Fold fold_bn(const torch::nn::BatchNorm2d& bn, int64_t channels, const at::Tensor& layer_bias);
Fold fold_bn(const torch::nn::BatchNorm1d& bn, int64_t channels, const at::Tensor& layer_bias);

// The output spec of a node whose value feeds `act` (null: no activation):
// quantized -> CODES(bits, alpha) with alpha the float32 parameter itself;
// full precision -> FLOAT clip(alpha); relu -> FLOAT relu. Throws for a
// non-positive or non-finite alpha.
ValueType activation_type(const nn::PactReLU& act, rt::OutputSpec* spec);

// A conv/linear weight as the runtime stores it, and the factor the integer
// path folds into out_scale (w_scale / n_w).
struct Weights {
  rt::WeightData data;
  double int_factor = 1.0;
};
Weights export_weight(nn::QuantizedWeight& q, const at::Tensor& w);

std::vector<float> to_floats(const at::Tensor& t);

// The input normalisation an exported model records: one mean and std per
// input channel, empty meaning 0 and 1. Throws std::invalid_argument when
// the counts do not match `channels`.
void resolve_normalization(int64_t channels, std::vector<float>& mean, std::vector<float>& std);

}  // namespace pactq::export_
