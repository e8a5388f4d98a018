#include "pactq/models/preact_resnet.h"

#include <ATen/ATen.h>
#include <torch/nn/init.h>

#include <stdexcept>
#include <string>

#include "pactq/models/common.h"
#include "pactq/nn/batch_norm.h"

namespace pactq::models {

using detail::make_act;
using detail::make_bn2d;
using detail::make_conv;

namespace {
// torchvision's ResNet init: kaiming_normal_(fan_out, relu) for convs.
void init_conv(nn::QConv2d& conv) {
  torch::NoGradGuard no_grad;
  torch::nn::init::kaiming_normal_(conv->weight, 0.0, torch::kFanOut, torch::kReLU);
}
}  // namespace

// ------------------------------------------------------------------ basic

PreActBasicBlockImpl::PreActBasicBlockImpl(int64_t in_planes_, int64_t planes_, int64_t stride_,
                                           bool preact_, double alpha_init)
    : torch::nn::Module("PreActBasicBlock"),
      in_planes(in_planes_),
      planes(planes_),
      stride(stride_),
      preact(preact_) {
  if (preact) {
    bn1 = register_module("bn1", make_bn2d(in_planes));
    act1 = register_module("act1", make_act(alpha_init));
  }
  conv1 = register_module("conv1", make_conv(in_planes, planes, 3, stride, 1));
  bn2 = register_module("bn2", make_bn2d(planes));
  act2 = register_module("act2", make_act(alpha_init));
  conv2 = register_module("conv2", make_conv(planes, planes, 3, 1, 1));
  init_conv(conv1);
  init_conv(conv2);
  if (stride != 1 || in_planes != planes * kExpansion) {
    shortcut = register_module("shortcut", make_conv(in_planes, planes * kExpansion, 1, stride, 0));
    init_conv(shortcut);
  }
}

at::Tensor PreActBasicBlockImpl::forward(const at::Tensor& x) {
  const at::Tensor p = preact ? act1->forward(nn::batch_norm(bn1, x)) : x;
  at::Tensor out = conv1->forward(p);
  out = conv2->forward(act2->forward(nn::batch_norm(bn2, out)));
  return out + (shortcut ? shortcut->forward(p) : x);
}

// ------------------------------------------------------------------ bottleneck

PreActBottleneckImpl::PreActBottleneckImpl(int64_t in_planes_, int64_t planes_, int64_t stride_,
                                           bool preact_, double alpha_init)
    : torch::nn::Module("PreActBottleneck"),
      in_planes(in_planes_),
      planes(planes_),
      stride(stride_),
      preact(preact_) {
  if (preact) {
    bn1 = register_module("bn1", make_bn2d(in_planes));
    act1 = register_module("act1", make_act(alpha_init));
  }
  conv1 = register_module("conv1", make_conv(in_planes, planes, 1, 1, 0));
  bn2 = register_module("bn2", make_bn2d(planes));
  act2 = register_module("act2", make_act(alpha_init));
  conv2 = register_module("conv2", make_conv(planes, planes, 3, stride, 1));
  bn3 = register_module("bn3", make_bn2d(planes));
  act3 = register_module("act3", make_act(alpha_init));
  conv3 = register_module("conv3", make_conv(planes, planes * kExpansion, 1, 1, 0));
  init_conv(conv1);
  init_conv(conv2);
  init_conv(conv3);
  if (stride != 1 || in_planes != planes * kExpansion) {
    shortcut = register_module("shortcut", make_conv(in_planes, planes * kExpansion, 1, stride, 0));
    init_conv(shortcut);
  }
}

at::Tensor PreActBottleneckImpl::forward(const at::Tensor& x) {
  const at::Tensor p = preact ? act1->forward(nn::batch_norm(bn1, x)) : x;
  at::Tensor out = conv1->forward(p);
  out = conv2->forward(act2->forward(nn::batch_norm(bn2, out)));
  out = conv3->forward(act3->forward(nn::batch_norm(bn3, out)));
  return out + (shortcut ? shortcut->forward(p) : x);
}

// ------------------------------------------------------------------ network

PreActResNet::PreActResNet(const std::string& name, int depth, int64_t num_classes,
                           double alpha_init, int64_t input_size)
    : QuantModel(name, InputShape{3, input_size, input_size}, num_classes), depth_(depth) {
  std::vector<int> counts;
  switch (depth) {
    case 18:
      counts = {2, 2, 2, 2};
      break;
    case 34:
      counts = {3, 4, 6, 3};
      break;
    case 50:
      counts = {3, 4, 6, 3};
      break;
    case 101:
      counts = {3, 4, 23, 3};
      break;
    case 152:
      counts = {3, 8, 36, 3};
      break;
    default:
      throw std::invalid_argument(name + ": depth must be 18, 34, 50, 101 or 152, got " +
                                  std::to_string(depth));
  }
  if (num_classes <= 0) throw std::invalid_argument(name + ": num_classes must be positive");
  if (input_size < 32) throw std::invalid_argument(name + ": input size must be at least 32");
  conv1 = register_module("conv1", make_conv(3, 64, 7, 2, 3));
  bn1 = register_module("bn1", make_bn2d(64));
  act1 = register_module("act1", make_act(alpha_init));
  maxpool = register_module("maxpool", detail::make_maxpool(3, 2, 1));
  init_conv(conv1);

  torch::nn::ModuleList* lists[4] = {&layer1, &layer2, &layer3, &layer4};
  const int64_t expansion =
      bottleneck() ? PreActBottleneckImpl::kExpansion : PreActBasicBlockImpl::kExpansion;
  int64_t in_planes = 64;
  for (int s = 0; s < 4; ++s) {
    const int64_t planes = int64_t{64} << s;
    *lists[s] = torch::nn::ModuleList();
    stages_.emplace_back();
    basic_.emplace_back();
    bottleneck_.emplace_back();
    for (int b = 0; b < counts[s]; ++b) {
      const int64_t stride = (s > 0 && b == 0) ? 2 : 1;
      const bool preact = !(s == 0 && b == 0);
      if (bottleneck()) {
        PreActBottleneck block(in_planes, planes, stride, preact, alpha_init);
        (*lists[s])->push_back(block);
        bottleneck_.back().push_back(block);
        stages_.back().push_back(block.ptr());
      } else {
        PreActBasicBlock block(in_planes, planes, stride, preact, alpha_init);
        (*lists[s])->push_back(block);
        basic_.back().push_back(block);
        stages_.back().push_back(block.ptr());
      }
      in_planes = planes * expansion;
    }
    register_module("layer" + std::to_string(s + 1), *lists[s]);
  }
  bn_final = register_module("bn_final", make_bn2d(in_planes));
  act_final = register_module("act_final", make_act(alpha_init));
  fc = register_module("fc", detail::make_linear(in_planes, num_classes, true));
}

at::Tensor PreActResNet::forward(const at::Tensor& x) {
  at::Tensor out = maxpool->forward(act1->forward(nn::batch_norm(bn1, conv1->forward(x))));
  for (size_t s = 0; s < stages_.size(); ++s) {
    if (bottleneck()) {
      for (auto& block : bottleneck_[s]) out = block->forward(out);
    } else {
      for (auto& block : basic_[s]) out = block->forward(out);
    }
  }
  out = act_final->forward(nn::batch_norm(bn_final, out));
  return fc->forward(out.mean({2, 3}));
}

// ------------------------------------------------------------ lowering
// The same topology as the forward()s above, for the exporter. The block's
// sum is the last conv with a residual input (FLOAT output: no activation
// after the sum).

LoweredValue PreActBasicBlockImpl::lower(Lowering& b, const std::string& prefix, LoweredValue x) {
  const LoweredValue pre = preact ? b.affine(prefix + "bn1", x, bn1, act1) : x;
  ResidualInput r{x, 1, 0};
  if (shortcut) r.value = b.conv(prefix + "shortcut", shortcut, pre, nullptr, nullptr);
  const LoweredValue y = b.conv(prefix + "conv1", conv1, pre, bn2, act2);
  return b.conv(prefix + "conv2", conv2, y, nullptr, nullptr, r);
}

LoweredValue PreActBottleneckImpl::lower(Lowering& b, const std::string& prefix, LoweredValue x) {
  const LoweredValue pre = preact ? b.affine(prefix + "bn1", x, bn1, act1) : x;
  ResidualInput r{x, 1, 0};
  if (shortcut) r.value = b.conv(prefix + "shortcut", shortcut, pre, nullptr, nullptr);
  LoweredValue y = b.conv(prefix + "conv1", conv1, pre, bn2, act2);
  y = b.conv(prefix + "conv2", conv2, y, bn3, act3);
  return b.conv(prefix + "conv3", conv3, y, nullptr, nullptr, r);
}

void PreActResNet::lower(Lowering& b, LoweredValue x) {
  x = b.conv("conv1", conv1, x, bn1, act1);
  x = b.max_pool("maxpool", maxpool, x);
  for (size_t s = 0; s < stages_.size(); ++s) {
    for (size_t i = 0; i < stages_[s].size(); ++i) {
      const std::string p = "layer" + std::to_string(s + 1) + "." + std::to_string(i) + ".";
      x = bottleneck() ? bottleneck_[s][i]->lower(b, p, x) : basic_[s][i]->lower(b, p, x);
    }
  }
  x = b.affine("bn_final", x, bn_final, act_final);
  x = b.global_avg_pool("avgpool", x);
  b.linear("fc", fc, x, nullptr, nullptr);
}

}  // namespace pactq::models
