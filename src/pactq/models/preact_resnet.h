// Pre-activation ResNets for ImageNet (He et al., "Identity Mappings in Deep
// Residual Networks", 2016), laid out like facebook/fb.resnet.torch preresnet:
//
//   conv1(3->64, 7x7, stride 2, pad 3) bn1 act1 maxpool(3, stride 2, pad 1)
//   layer1..layer4 (64/128/256/512 planes, first block of layer2..4 stride 2)
//   bn_final act_final mean(H,W) fc(C->classes, bias)
//
// Blocks are pre-activation: bn-act-conv. The first block of layer1 has no
// pre-activation of its own (its input is the stem's activated, pooled
// output). Where the shape changes, the shortcut is a 1x1 QConv2d ("shortcut",
// stride s, no bias, no BN) applied to the block's pre-activated input; else the
// shortcut is the raw block input x. Strides sit on the 3x3 convs.
#pragma once
#include <torch/nn/modules/batchnorm.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/pooling.h>

#include <vector>

#include "pactq/models/lowering.h"
#include "pactq/models/model.h"
#include "pactq/nn/pact_relu.h"
#include "pactq/nn/qconv2d.h"
#include "pactq/nn/qlinear.h"

namespace pactq::models {

// Basic block (ResNet18/34), registration order = forward order:
//   p   = preact ? act1(bn1(x)) : x
//   out = conv2(act2(bn2(conv1(p))))           conv1 3x3 stride s pad 1, conv2 3x3 pad 1
//   out = out + (shortcut ? shortcut(p) : x)
class PreActBasicBlockImpl : public torch::nn::Module {
 public:
  static constexpr int64_t kExpansion = 1;
  PreActBasicBlockImpl(int64_t in_planes, int64_t planes, int64_t stride, bool preact,
                       double alpha_init);
  at::Tensor forward(const at::Tensor& x);
  // forward() as inference nodes named prefix + "bn1", "shortcut", "conv1", ...
  LoweredValue lower(Lowering& b, const std::string& prefix, LoweredValue x);

  int64_t in_planes, planes, stride;
  bool preact;                          // false: bn1/act1 are null (layer1.0)
  torch::nn::BatchNorm2d bn1{nullptr};  // in_planes
  nn::PactReLU act1{nullptr};
  nn::QConv2d conv1{nullptr};
  torch::nn::BatchNorm2d bn2{nullptr};
  nn::PactReLU act2{nullptr};
  nn::QConv2d conv2{nullptr};
  nn::QConv2d shortcut{nullptr};  // 1x1 projection, null for identity
};
TORCH_MODULE(PreActBasicBlock);

// Bottleneck block (ResNet50/101/152), output planes * 4:
//   p   = preact ? act1(bn1(x)) : x
//   out = conv3(act3(bn3(conv2(act2(bn2(conv1(p)))))))
//         conv1 1x1 in->planes, conv2 3x3 stride s pad 1, conv3 1x1 planes->4*planes
//   out = out + (shortcut ? shortcut(p) : x)
class PreActBottleneckImpl : public torch::nn::Module {
 public:
  static constexpr int64_t kExpansion = 4;
  PreActBottleneckImpl(int64_t in_planes, int64_t planes, int64_t stride, bool preact,
                       double alpha_init);
  at::Tensor forward(const at::Tensor& x);
  // forward() as inference nodes named prefix + "bn1", "shortcut", "conv1", ...
  LoweredValue lower(Lowering& b, const std::string& prefix, LoweredValue x);

  int64_t in_planes, planes, stride;
  bool preact;
  torch::nn::BatchNorm2d bn1{nullptr};
  nn::PactReLU act1{nullptr};
  nn::QConv2d conv1{nullptr};
  torch::nn::BatchNorm2d bn2{nullptr};
  nn::PactReLU act2{nullptr};
  nn::QConv2d conv2{nullptr};
  torch::nn::BatchNorm2d bn3{nullptr};
  nn::PactReLU act3{nullptr};
  nn::QConv2d conv3{nullptr};
  nn::QConv2d shortcut{nullptr};
};
TORCH_MODULE(PreActBottleneck);

class PreActResNet : public QuantModel {
 public:
  // depth 18 or 34 (basic blocks), 50, 101 or 152 (bottlenecks).
  PreActResNet(const std::string& name, int depth, int64_t num_classes, double alpha_init,
               int64_t input_size = 224);
  at::Tensor forward(const at::Tensor& x) override;
  void lower(Lowering& b, LoweredValue x);  // forward() as inference nodes

  int depth() const { return depth_; }
  bool bottleneck() const { return depth_ >= 50; }
  // Blocks of layer1..layer4, in order; each is a PreActBasicBlockImpl or a
  // PreActBottleneckImpl (see bottleneck()).
  const std::vector<std::vector<std::shared_ptr<torch::nn::Module>>>& stages() const {
    return stages_;
  }
  // Typed views of the same blocks (the one that does not match the depth is empty).
  const std::vector<std::vector<PreActBasicBlock>>& basic_stages() const { return basic_; }
  const std::vector<std::vector<PreActBottleneck>>& bottleneck_stages() const {
    return bottleneck_;
  }

  nn::QConv2d conv1{nullptr};
  torch::nn::BatchNorm2d bn1{nullptr};
  nn::PactReLU act1{nullptr};
  torch::nn::MaxPool2d maxpool{nullptr};
  torch::nn::ModuleList layer1{nullptr}, layer2{nullptr}, layer3{nullptr}, layer4{nullptr};
  torch::nn::BatchNorm2d bn_final{nullptr};
  nn::PactReLU act_final{nullptr};
  nn::QLinear fc{nullptr};

 private:
  int depth_;
  std::vector<std::vector<std::shared_ptr<torch::nn::Module>>> stages_;
  std::vector<std::vector<PreActBasicBlock>> basic_;
  std::vector<std::vector<PreActBottleneck>> bottleneck_;
};

}  // namespace pactq::models
