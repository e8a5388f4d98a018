// Construction helpers shared by the zoo's models (internal to src/pactq/models).
#pragma once
#include <torch/nn/modules/batchnorm.h>
#include <torch/nn/modules/pooling.h>

#include <cstdint>

#include "pactq/nn/pact_relu.h"
#include "pactq/nn/qconv2d.h"
#include "pactq/nn/qlinear.h"

namespace pactq::models::detail {

// A full-precision QConv2d (the policy sets its width later).
inline nn::QConv2d make_conv(int64_t in, int64_t out, int64_t kernel, int64_t stride,
                             int64_t padding, bool bias = false) {
  nn::QConv2dOptions o;
  o.in_channels = in;
  o.out_channels = out;
  o.kernel_size = kernel;
  o.stride = stride;
  o.padding = padding;
  o.bias = bias;
  o.wbits = 32;
  return nn::QConv2d(o);
}

inline nn::QLinear make_linear(int64_t in, int64_t out, bool bias) {
  nn::QLinearOptions o;
  o.in_features = in;
  o.out_features = out;
  o.bias = bias;
  o.wbits = 32;
  return nn::QLinear(o);
}

// A full-precision PACT activation (learnable clip at alpha_init).
inline nn::PactReLU make_act(double alpha_init) {
  nn::PactReLUOptions o;
  o.bits = 32;
  o.alpha_init = alpha_init;
  o.kind = nn::ActivationKind::kPact;
  return nn::PactReLU(o);
}

// PyTorch's defaults: eps 1e-5, momentum 0.1, affine, running stats.
inline torch::nn::BatchNorm2d make_bn2d(int64_t channels) {
  return torch::nn::BatchNorm2d(torch::nn::BatchNorm2dOptions(channels).eps(1e-5).momentum(0.1));
}
inline torch::nn::BatchNorm1d make_bn1d(int64_t features) {
  return torch::nn::BatchNorm1d(torch::nn::BatchNorm1dOptions(features).eps(1e-5).momentum(0.1));
}

inline torch::nn::MaxPool2d make_maxpool(int64_t kernel, int64_t stride, int64_t padding = 0) {
  return torch::nn::MaxPool2d(torch::nn::MaxPool2dOptions(kernel).stride(stride).padding(padding));
}

// Output size of a convolution or pooling window along one dimension (floor mode).
inline int64_t window_out(int64_t in, int64_t kernel, int64_t stride, int64_t padding) {
  return (in + 2 * padding - kernel) / stride + 1;
}

}  // namespace pactq::models::detail
