// The zoo's plain (non-residual) networks: LeNet-5, the DoReFa SVHN net and
// AlexNet with BatchNorm. Each is a fixed chain; README.md lists it exactly.
#pragma once
#include <torch/nn/modules/batchnorm.h>
#include <torch/nn/modules/pooling.h>

#include <vector>

#include "pactq/models/lowering.h"
#include "pactq/models/model.h"
#include "pactq/nn/pact_relu.h"
#include "pactq/nn/qconv2d.h"
#include "pactq/nn/qlinear.h"

namespace pactq::models {

// LeNet-5 for 1x28x28 grey images:
//   conv1(1->6, 5x5, pad 2) bn1 act1 pool1(max 2) conv2(6->16, 5x5) bn2 act2 pool2(max 2)
//   flatten(400) fc1(400->120, no bias) bn3 act3 fc2(120->84, no bias) bn4 act4 fc3(84->classes,
//   bias)
class LeNet5 : public QuantModel {
 public:
  LeNet5(int64_t num_classes, double alpha_init, int64_t input_size = 28);
  at::Tensor forward(const at::Tensor& x) override;
  void lower(Lowering& b, LoweredValue x);  // forward() as inference nodes

  nn::QConv2d conv1{nullptr};
  torch::nn::BatchNorm2d bn1{nullptr};
  nn::PactReLU act1{nullptr};
  torch::nn::MaxPool2d pool1{nullptr};
  nn::QConv2d conv2{nullptr};
  torch::nn::BatchNorm2d bn2{nullptr};
  nn::PactReLU act2{nullptr};
  torch::nn::MaxPool2d pool2{nullptr};
  nn::QLinear fc1{nullptr};
  torch::nn::BatchNorm1d bn3{nullptr};
  nn::PactReLU act3{nullptr};
  nn::QLinear fc2{nullptr};
  torch::nn::BatchNorm1d bn4{nullptr};
  nn::PactReLU act4{nullptr};
  nn::QLinear fc3{nullptr};
};

// The SVHN network of DoReFa-Net (tensorpack svhn-digit-dorefa.py) used by
// PACT, 7 convs + 1 FC, adapted to 32x32 inputs and to "BN before every
// activation":
//   conv0(3->48, 5x5, pad 2) bn0 act0 pool0(max 2)
//   conv1(48->64, 3x3, pad 1) bn1 act1
//   conv2(64->64, 3x3, pad 1) bn2 act2 pool1(max 2)
//   conv3(64->128, 3x3, pad 0) bn3 act3
//   conv4(128->128, 3x3, pad 1) bn4 act4
//   conv5(128->128, 3x3, pad 0) bn5 act5
//   conv6(128->512, KxK, pad 0) bn6 act6      K = the remaining spatial size (4 at 32x32), output
//   1x1 flatten(512) fc(512->classes, bias)
// All convs without bias. Differences to DoReFa: conv0 is padded (DoReFa feeds
// 40x40 crops to an unpadded conv0) and has BN; act0 precedes pool0 (the same
// values: max-pooling commutes with a monotone activation); no dropout.
class Svhn7 : public QuantModel {
 public:
  Svhn7(int64_t num_classes, double alpha_init, int64_t input_size = 32);
  at::Tensor forward(const at::Tensor& x) override;
  void lower(Lowering& b, LoweredValue x);  // forward() as inference nodes

  // conv[i], bn[i], act[i] are registered as "conv<i>", "bn<i>", "act<i>", i = 0..6.
  std::vector<nn::QConv2d> conv;
  std::vector<torch::nn::BatchNorm2d> bn;
  std::vector<nn::PactReLU> act;
  torch::nn::MaxPool2d pool0{nullptr}, pool1{nullptr};
  nn::QLinear fc{nullptr};
  int64_t conv6_kernel = 0;
};

// AlexNet (Krizhevsky et al. 2012 widths, single tower) with BatchNorm instead
// of LRN, for 3x224x224:
//   conv1(3->96, 11x11, stride 4, pad 2) bn1 act1 pool1(max 3, stride 2)     55 -> 27
//   conv2(96->256, 5x5, pad 2) bn2 act2 pool2(max 3, stride 2)               27 -> 13
//   conv3(256->384, 3x3, pad 1) bn3 act3
//   conv4(384->384, 3x3, pad 1) bn4 act4
//   conv5(384->256, 3x3, pad 1) bn5 act5 pool5(max 3, stride 2)              13 -> 6
//   flatten(256*6*6) fc6(9216->4096, no bias) bn6 act6 fc7(4096->4096, no bias) bn7 act7
//   fc8(4096->classes, bias)
// Convs without bias. Another input size S changes fc6's input to 256*s*s
// with s the spatial size after pool5 (no adaptive pooling); dropout omitted.
class AlexNetBN : public QuantModel {
 public:
  AlexNetBN(int64_t num_classes, double alpha_init, int64_t input_size = 224);
  at::Tensor forward(const at::Tensor& x) override;
  void lower(Lowering& b, LoweredValue x);  // forward() as inference nodes

  nn::QConv2d conv1{nullptr}, conv2{nullptr}, conv3{nullptr}, conv4{nullptr}, conv5{nullptr};
  torch::nn::BatchNorm2d bn1{nullptr}, bn2{nullptr}, bn3{nullptr}, bn4{nullptr}, bn5{nullptr};
  nn::PactReLU act1{nullptr}, act2{nullptr}, act3{nullptr}, act4{nullptr}, act5{nullptr};
  torch::nn::MaxPool2d pool1{nullptr}, pool2{nullptr}, pool5{nullptr};
  nn::QLinear fc6{nullptr}, fc7{nullptr}, fc8{nullptr};
  torch::nn::BatchNorm1d bn6{nullptr}, bn7{nullptr};
  nn::PactReLU act6{nullptr}, act7{nullptr};
  int64_t feature_size = 6;  // spatial size after pool5
};

}  // namespace pactq::models
