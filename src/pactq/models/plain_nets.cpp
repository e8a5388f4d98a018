#include "pactq/models/plain_nets.h"

#include <ATen/ATen.h>

#include <stdexcept>
#include <string>

#include "pactq/models/common.h"
#include "pactq/nn/batch_norm.h"

namespace pactq::models {

using detail::make_act;
using detail::make_bn1d;
using detail::make_bn2d;
using detail::make_conv;
using detail::make_linear;
using detail::make_maxpool;
using detail::window_out;

namespace {
void require(bool ok, const std::string& model, const std::string& what) {
  if (!ok) throw std::invalid_argument(model + ": " + what);
}
}  // namespace

// ------------------------------------------------------------------ LeNet-5

LeNet5::LeNet5(int64_t num_classes, double alpha_init, int64_t input_size)
    : QuantModel("lenet5", InputShape{1, input_size, input_size}, num_classes) {
  require(num_classes > 0, "lenet5", "num_classes must be positive");
  // conv1 keeps the size (pad 2), pool halves, conv2 (5x5 valid) removes 4, pool halves.
  const int64_t s = window_out(window_out(input_size / 2, 5, 1, 0), 2, 2, 0);
  require(input_size >= 12 && s >= 1, "lenet5",
          "input size " + std::to_string(input_size) + " is too small");
  conv1 = register_module("conv1", make_conv(1, 6, 5, 1, 2));
  bn1 = register_module("bn1", make_bn2d(6));
  act1 = register_module("act1", make_act(alpha_init));
  pool1 = register_module("pool1", make_maxpool(2, 2));
  conv2 = register_module("conv2", make_conv(6, 16, 5, 1, 0));
  bn2 = register_module("bn2", make_bn2d(16));
  act2 = register_module("act2", make_act(alpha_init));
  pool2 = register_module("pool2", make_maxpool(2, 2));
  fc1 = register_module("fc1", make_linear(16 * s * s, 120, false));
  bn3 = register_module("bn3", make_bn1d(120));
  act3 = register_module("act3", make_act(alpha_init));
  fc2 = register_module("fc2", make_linear(120, 84, false));
  bn4 = register_module("bn4", make_bn1d(84));
  act4 = register_module("act4", make_act(alpha_init));
  fc3 = register_module("fc3", make_linear(84, num_classes, true));
}

at::Tensor LeNet5::forward(const at::Tensor& x) {
  at::Tensor out = pool1->forward(act1->forward(nn::batch_norm(bn1, conv1->forward(x))));
  out = pool2->forward(act2->forward(nn::batch_norm(bn2, conv2->forward(out))));
  out = out.flatten(1);
  out = act3->forward(nn::batch_norm(bn3, fc1->forward(out)));
  out = act4->forward(nn::batch_norm(bn4, fc2->forward(out)));
  return fc3->forward(out);
}

// ------------------------------------------------------------------ SVHN

Svhn7::Svhn7(int64_t num_classes, double alpha_init, int64_t input_size)
    : QuantModel("svhn7", InputShape{3, input_size, input_size}, num_classes) {
  require(num_classes > 0, "svhn7", "num_classes must be positive");
  // Spatial size before conv6: conv0 same, pool /2, conv1/2 same, pool /2,
  // conv3 valid (-2), conv4 same, conv5 valid (-2).
  const int64_t before6 = (input_size / 2) / 2 - 4;
  require(before6 >= 1, "svhn7",
          "input size " + std::to_string(input_size) + " is too small (at least 20)");
  conv6_kernel = before6;
  struct Spec {
    int64_t in, out, kernel, padding;
  };
  const Spec specs[7] = {{3, 48, 5, 2},
                         {48, 64, 3, 1},
                         {64, 64, 3, 1},
                         {64, 128, 3, 0},
                         {128, 128, 3, 1},
                         {128, 128, 3, 0},
                         {128, 512, conv6_kernel, 0}};
  for (int i = 0; i < 7; ++i) {
    const std::string k = std::to_string(i);
    conv.push_back(register_module(
        "conv" + k, make_conv(specs[i].in, specs[i].out, specs[i].kernel, 1, specs[i].padding)));
    bn.push_back(register_module("bn" + k, make_bn2d(specs[i].out)));
    act.push_back(register_module("act" + k, make_act(alpha_init)));
    if (i == 0) pool0 = register_module("pool0", make_maxpool(2, 2));
    if (i == 2) pool1 = register_module("pool1", make_maxpool(2, 2));
  }
  fc = register_module("fc", make_linear(512, num_classes, true));
}

at::Tensor Svhn7::forward(const at::Tensor& x) {
  at::Tensor out = x;
  for (int i = 0; i < 7; ++i) {
    out = act[i]->forward(nn::batch_norm(bn[i], conv[i]->forward(out)));
    if (i == 0) out = pool0->forward(out);
    if (i == 2) out = pool1->forward(out);
  }
  return fc->forward(out.flatten(1));
}

// ------------------------------------------------------------------ AlexNet

AlexNetBN::AlexNetBN(int64_t num_classes, double alpha_init, int64_t input_size)
    : QuantModel("alexnet_bn", InputShape{3, input_size, input_size}, num_classes) {
  require(num_classes > 0, "alexnet_bn", "num_classes must be positive");
  int64_t s = window_out(input_size, 11, 4, 2);
  s = window_out(s, 3, 2, 0);  // pool1
  s = window_out(s, 3, 2, 0);  // pool2 (conv2..5 keep the size)
  s = window_out(s, 3, 2, 0);  // pool5
  require(input_size >= 11 && s >= 1, "alexnet_bn",
          "input size " + std::to_string(input_size) + " is too small (at least 63)");
  feature_size = s;
  conv1 = register_module("conv1", make_conv(3, 96, 11, 4, 2));
  bn1 = register_module("bn1", make_bn2d(96));
  act1 = register_module("act1", make_act(alpha_init));
  pool1 = register_module("pool1", make_maxpool(3, 2));
  conv2 = register_module("conv2", make_conv(96, 256, 5, 1, 2));
  bn2 = register_module("bn2", make_bn2d(256));
  act2 = register_module("act2", make_act(alpha_init));
  pool2 = register_module("pool2", make_maxpool(3, 2));
  conv3 = register_module("conv3", make_conv(256, 384, 3, 1, 1));
  bn3 = register_module("bn3", make_bn2d(384));
  act3 = register_module("act3", make_act(alpha_init));
  conv4 = register_module("conv4", make_conv(384, 384, 3, 1, 1));
  bn4 = register_module("bn4", make_bn2d(384));
  act4 = register_module("act4", make_act(alpha_init));
  conv5 = register_module("conv5", make_conv(384, 256, 3, 1, 1));
  bn5 = register_module("bn5", make_bn2d(256));
  act5 = register_module("act5", make_act(alpha_init));
  pool5 = register_module("pool5", make_maxpool(3, 2));
  fc6 = register_module("fc6", make_linear(256 * s * s, 4096, false));
  bn6 = register_module("bn6", make_bn1d(4096));
  act6 = register_module("act6", make_act(alpha_init));
  fc7 = register_module("fc7", make_linear(4096, 4096, false));
  bn7 = register_module("bn7", make_bn1d(4096));
  act7 = register_module("act7", make_act(alpha_init));
  fc8 = register_module("fc8", make_linear(4096, num_classes, true));
}

at::Tensor AlexNetBN::forward(const at::Tensor& x) {
  at::Tensor out = pool1->forward(act1->forward(nn::batch_norm(bn1, conv1->forward(x))));
  out = pool2->forward(act2->forward(nn::batch_norm(bn2, conv2->forward(out))));
  out = act3->forward(nn::batch_norm(bn3, conv3->forward(out)));
  out = act4->forward(nn::batch_norm(bn4, conv4->forward(out)));
  out = pool5->forward(act5->forward(nn::batch_norm(bn5, conv5->forward(out))));
  out = out.flatten(1);
  out = act6->forward(nn::batch_norm(bn6, fc6->forward(out)));
  out = act7->forward(nn::batch_norm(bn7, fc7->forward(out)));
  return fc8->forward(out);
}

// ------------------------------------------------------------ lowering
// The same topology as the forward()s above, for the exporter.

void LeNet5::lower(Lowering& b, LoweredValue x) {
  x = b.conv("conv1", conv1, x, bn1, act1);
  x = b.max_pool("pool1", pool1, x);
  x = b.conv("conv2", conv2, x, bn2, act2);
  x = b.max_pool("pool2", pool2, x);
  x = b.flatten("flatten", x);
  x = b.linear("fc1", fc1, x, bn3, act3);
  x = b.linear("fc2", fc2, x, bn4, act4);
  b.linear("fc3", fc3, x, nullptr, nullptr);
}

void Svhn7::lower(Lowering& b, LoweredValue x) {
  for (int i = 0; i < 7; ++i) {
    x = b.conv("conv" + std::to_string(i), conv.at(i), x, bn.at(i), act.at(i));
    if (i == 0) x = b.max_pool("pool0", pool0, x);
    if (i == 2) x = b.max_pool("pool1", pool1, x);
  }
  x = b.flatten("flatten", x);
  b.linear("fc", fc, x, nullptr, nullptr);
}

void AlexNetBN::lower(Lowering& b, LoweredValue x) {
  x = b.conv("conv1", conv1, x, bn1, act1);
  x = b.max_pool("pool1", pool1, x);
  x = b.conv("conv2", conv2, x, bn2, act2);
  x = b.max_pool("pool2", pool2, x);
  x = b.conv("conv3", conv3, x, bn3, act3);
  x = b.conv("conv4", conv4, x, bn4, act4);
  x = b.conv("conv5", conv5, x, bn5, act5);
  x = b.max_pool("pool5", pool5, x);
  x = b.flatten("flatten", x);
  x = b.linear("fc6", fc6, x, bn6, act6);
  x = b.linear("fc7", fc7, x, bn7, act7);
  b.linear("fc8", fc8, x, nullptr, nullptr);
}

}  // namespace pactq::models
