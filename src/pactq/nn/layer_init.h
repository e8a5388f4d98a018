// Shared construction helpers for the quantized layers.
#pragma once
#include <ATen/ATen.h>
#include <torch/nn/init.h>
#include <torch/types.h>

#include <cmath>
#include <stdexcept>
#include <string>

namespace pactq::nn {

// PyTorch's default initialisation for conv and linear layers (kaiming-uniform
// with a = sqrt(5), bias uniform in +-1/sqrt(fan_in)), so an unquantized pactq
// layer starts like its PyTorch twin.
inline void init_like_pytorch(at::Tensor& weight, at::Tensor& bias, int64_t fan_in) {
  torch::NoGradGuard no_grad;
  torch::nn::init::kaiming_uniform_(weight, std::sqrt(5.0));
  if (bias.defined()) {
    const double bound = fan_in > 0 ? 1.0 / std::sqrt(static_cast<double>(fan_in)) : 0.0;
    torch::nn::init::uniform_(bias, -bound, bound);
  }
}

inline void require_positive(int64_t value, const char* layer, const char* what) {
  if (value <= 0) {
    throw std::invalid_argument(std::string(layer) + ": " + what + " must be positive, got " +
                                std::to_string(value));
  }
}

}  // namespace pactq::nn
