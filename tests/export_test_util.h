// Helpers shared by the export tests (.pqm and ONNX).
#pragma once
#include <ATen/ATen.h>
#include <stdlib.h>
#include <torch/nn/modules/batchnorm.h>

#include <filesystem>
#include <string>

#include "pactq/models/model.h"
#include "pactq/nn/pact_relu.h"

namespace pactq::test {

// A fresh directory under the system's temporary folder.
inline std::string temp_dir(const std::string& tag) {
  std::string pattern =
      (std::filesystem::temp_directory_path() / ("pactq_" + tag + "_XXXXXX")).string();
  return mkdtemp(pattern.data());
}

// Realistic eval statistics without training: one train-mode pass with BN
// momentum 1 sets every running mean/var to that batch's, BN affine
// parameters random (2-d BN gamma from [gamma_low, 1.5]: a negative low end
// gives some negative scales), then alphas = 3.
inline void calibrate(models::QuantModel& model, const at::Tensor& x, double gamma_low = 0.5) {
  at::NoGradGuard no_grad;
  for (const auto& m : model.modules()) {
    if (auto bn = std::dynamic_pointer_cast<torch::nn::BatchNorm2dImpl>(m)) {
      bn->options.momentum(1.0);
      bn->weight.uniform_(gamma_low, 1.5);
      bn->bias.uniform_(-0.2, 0.2);
    }
    if (auto bn = std::dynamic_pointer_cast<torch::nn::BatchNorm1dImpl>(m)) {
      bn->options.momentum(1.0);
      bn->weight.uniform_(0.5, 1.5);
      bn->bias.uniform_(-0.2, 0.2);
    }
    if (auto act = std::dynamic_pointer_cast<nn::PactReLUImpl>(m)) act->alpha.fill_(3.0);
  }
  model.train();
  model.forward(x);
  model.eval();
}

}  // namespace pactq::test
