// CIFAR ResNet (He et al. 2016, section 4.2) with "option A" parameter-free
// shortcuts, as in akamaster/pytorch_resnet_cifar10: parameter and buffer
// names equal that repository's state_dict, so its checkpoints load by name.
//
//   conv1 -> bn1 -> act1 -> layer1 -> layer2 -> layer3 -> mean(H,W) -> linear
//   layerK = n CifarBasicBlocks, 16/32/64 planes, first block of layer2/3 stride 2
#pragma once
#include <torch/nn/modules/batchnorm.h>
#include <torch/nn/modules/container/modulelist.h>

#include <vector>

#include "pactq/models/lowering.h"
#include "pactq/models/model.h"
#include "pactq/nn/pact_relu.h"
#include "pactq/nn/qconv2d.h"
#include "pactq/nn/qlinear.h"

namespace pactq::models {

// out = act2(bn2(conv2(act1(bn1(conv1(x))))) + shortcut(x))
// shortcut(x) = x when stride == 1 and in_planes == planes, else option A:
//   constant_pad(x[:, :, ::2, ::2], channels: pad_channels() zeros before and after)
class CifarBasicBlockImpl : public torch::nn::Module {
 public:
  CifarBasicBlockImpl(int64_t in_planes, int64_t planes, int64_t stride, double alpha_init);
  at::Tensor forward(const at::Tensor& x);
  // forward() as inference nodes named prefix + "conv1", prefix + "conv2".
  LoweredValue lower(Lowering& b, const std::string& prefix, LoweredValue x);

  // True when the shortcut subsamples and zero-pads (option A), false for identity.
  bool downsample() const { return stride != 1 || in_planes != planes; }
  int64_t pad_channels() const { return downsample() ? planes / 4 : 0; }

  int64_t in_planes;
  int64_t planes;
  int64_t stride;
  nn::QConv2d conv1{nullptr};  // 3x3, stride `stride`, pad 1, no bias
  torch::nn::BatchNorm2d bn1{nullptr};
  nn::PactReLU act1{nullptr};
  nn::QConv2d conv2{nullptr};  // 3x3, stride 1, pad 1, no bias
  torch::nn::BatchNorm2d bn2{nullptr};
  nn::PactReLU act2{nullptr};  // after the residual add
};
TORCH_MODULE(CifarBasicBlock);

// Option A shortcut used by CifarBasicBlock (exposed for the exporter and tests).
at::Tensor option_a_shortcut(const at::Tensor& x, int64_t pad_channels);

class CifarResNet : public QuantModel {
 public:
  // depth = 6n + 2 (20, 32, 44, 56, 110 ...).
  CifarResNet(const std::string& name, int depth, int64_t num_classes, double alpha_init,
              int64_t input_size = 32);
  at::Tensor forward(const at::Tensor& x) override;
  void lower(Lowering& b, LoweredValue x);  // forward() as inference nodes

  int depth() const { return depth_; }
  int blocks_per_stage() const { return (depth_ - 2) / 6; }
  // stages()[k] holds layer{k+1}'s blocks.
  const std::vector<std::vector<CifarBasicBlock>>& stages() const { return stages_; }
  std::vector<std::vector<CifarBasicBlock>>& stages() { return stages_; }

  nn::QConv2d conv1{nullptr};  // 3 -> 16, 3x3, pad 1, no bias
  torch::nn::BatchNorm2d bn1{nullptr};
  nn::PactReLU act1{nullptr};
  torch::nn::ModuleList layer1{nullptr}, layer2{nullptr}, layer3{nullptr};
  nn::QLinear linear{nullptr};  // 64 -> classes, bias

 private:
  int depth_;
  std::vector<std::vector<CifarBasicBlock>> stages_;
};

}  // namespace pactq::models
