// Lowering: how a model of the zoo describes its own inference graph, layer
// by layer, to whoever builds a deployable form of it (the .pqm exporter's
// PlanBuilder today; an ONNX exporter would implement the same interface).
// Each model writes its lowering next to its forward() (e.g.
// CifarResNet::lower) and registers it in models/registry.cpp, so the
// registry knows which models are exportable and a new model is one place
// to touch.
//
// Each call names a node and fuses what the runtime fuses: conv -> BN ->
// [+ residual] -> activation is one node. A null BN or activation means none.
#pragma once
#include <torch/nn/modules/batchnorm.h>
#include <torch/nn/modules/pooling.h>

#include <string>

#include "pactq/nn/pact_relu.h"
#include "pactq/nn/qconv2d.h"
#include "pactq/nn/qlinear.h"

namespace pactq::models {

// A value of the lowered graph: a handle the builder gives out.
struct LoweredValue {
  int id = -1;
};

// A residual added before a conv's activation: the value itself when stride
// 1 and no channel padding, else the option-A shortcut (subsample by
// `stride`, `pad_channels` zero channels on each side).
struct ResidualInput {
  LoweredValue value;
  int stride = 1;
  int pad_channels = 0;
};

class Lowering {
 public:
  virtual ~Lowering() = default;

  // act(bn(conv(x)) [+ residual])
  LoweredValue conv(const std::string& name, nn::QConv2d conv, LoweredValue x,
                    torch::nn::BatchNorm2d bn, nn::PactReLU act) {
    return conv_node(name, std::move(conv), x, std::move(bn), std::move(act), nullptr);
  }
  LoweredValue conv(const std::string& name, nn::QConv2d conv, LoweredValue x,
                    torch::nn::BatchNorm2d bn, nn::PactReLU act, const ResidualInput& residual) {
    return conv_node(name, std::move(conv), x, std::move(bn), std::move(act), &residual);
  }
  // act(bn(fc(x))); x must be [F] (flatten or global pool output).
  virtual LoweredValue linear(const std::string& name, nn::QLinear fc, LoweredValue x,
                              torch::nn::BatchNorm1d bn, nn::PactReLU act) = 0;
  // act(bn(x)) (pre-activation ResNets: BN + activation after a residual sum).
  virtual LoweredValue affine(const std::string& name, LoweredValue x, torch::nn::BatchNorm2d bn,
                              nn::PactReLU act) = 0;
  virtual LoweredValue max_pool(const std::string& name, torch::nn::MaxPool2d pool,
                                LoweredValue x) = 0;
  // Mean over H x W.
  virtual LoweredValue global_avg_pool(const std::string& name, LoweredValue x) = 0;
  // [C, H, W] -> [C*H*W] in PyTorch order.
  virtual LoweredValue flatten(const std::string& name, LoweredValue x) = 0;

 protected:
  virtual LoweredValue conv_node(const std::string& name, nn::QConv2d conv, LoweredValue x,
                                 torch::nn::BatchNorm2d bn, nn::PactReLU act,
                                 const ResidualInput* residual) = 0;
};

}  // namespace pactq::models
