#include "pactq/models/cifar_resnet.h"

#include <ATen/ATen.h>
#include <torch/nn/init.h>

#include <stdexcept>
#include <string>

#include "pactq/models/common.h"
#include "pactq/nn/batch_norm.h"

namespace pactq::models {

namespace {
// akamaster's _weights_init: kaiming_normal_ (fan_in, gain sqrt(2)) on every
// conv and linear weight; biases keep PyTorch's default.
void kaiming_normal_weight(at::Tensor& weight) {
  torch::NoGradGuard no_grad;
  torch::nn::init::kaiming_normal_(weight, 0.0, torch::kFanIn, torch::kLeakyReLU);
}
}  // namespace

at::Tensor option_a_shortcut(const at::Tensor& x, int64_t pad_channels) {
  const at::Tensor sub = x.slice(2, 0, x.size(2), 2).slice(3, 0, x.size(3), 2);
  return at::constant_pad_nd(sub, {0, 0, 0, 0, pad_channels, pad_channels}, 0.0);
}

CifarBasicBlockImpl::CifarBasicBlockImpl(int64_t in_planes_, int64_t planes_, int64_t stride_,
                                         double alpha_init)
    : torch::nn::Module("CifarBasicBlock"),
      in_planes(in_planes_),
      planes(planes_),
      stride(stride_) {
  if (downsample() && (stride != 2 || in_planes + 2 * (planes / 4) != planes)) {
    throw std::invalid_argument(
        "CifarBasicBlock: option A shortcut needs stride 2 and planes = 2 * in_planes, got " +
        std::to_string(in_planes) + "->" + std::to_string(planes) + " stride " +
        std::to_string(stride));
  }
  conv1 = register_module("conv1", detail::make_conv(in_planes, planes, 3, stride, 1));
  bn1 = register_module("bn1", detail::make_bn2d(planes));
  act1 = register_module("act1", detail::make_act(alpha_init));
  conv2 = register_module("conv2", detail::make_conv(planes, planes, 3, 1, 1));
  bn2 = register_module("bn2", detail::make_bn2d(planes));
  act2 = register_module("act2", detail::make_act(alpha_init));
  kaiming_normal_weight(conv1->weight);
  kaiming_normal_weight(conv2->weight);
}

at::Tensor CifarBasicBlockImpl::forward(const at::Tensor& x) {
  at::Tensor out = act1->forward(nn::batch_norm(bn1, conv1->forward(x)));
  out = nn::batch_norm(bn2, conv2->forward(out));
  out = out + (downsample() ? option_a_shortcut(x, pad_channels()) : x);
  return act2->forward(out);
}

CifarResNet::CifarResNet(const std::string& name, int depth, int64_t num_classes, double alpha_init,
                         int64_t input_size)
    : QuantModel(name, InputShape{3, input_size, input_size}, num_classes), depth_(depth) {
  if (depth < 8 || (depth - 2) % 6 != 0) {
    throw std::invalid_argument(name + ": depth must be 6n + 2 (20, 32, 44, 56, ...), got " +
                                std::to_string(depth));
  }
  if (num_classes <= 0) throw std::invalid_argument(name + ": num_classes must be positive");
  if (input_size < 4) throw std::invalid_argument(name + ": input size must be at least 4");
  const int n = blocks_per_stage();
  conv1 = register_module("conv1", detail::make_conv(3, 16, 3, 1, 1));
  bn1 = register_module("bn1", detail::make_bn2d(16));
  act1 = register_module("act1", detail::make_act(alpha_init));
  kaiming_normal_weight(conv1->weight);

  int64_t in_planes = 16;
  torch::nn::ModuleList* lists[3] = {&layer1, &layer2, &layer3};
  const int64_t planes_of[3] = {16, 32, 64};
  for (int s = 0; s < 3; ++s) {
    *lists[s] = torch::nn::ModuleList();
    stages_.emplace_back();
    for (int b = 0; b < n; ++b) {
      const int64_t stride = (s > 0 && b == 0) ? 2 : 1;
      CifarBasicBlock block(in_planes, planes_of[s], stride, alpha_init);
      (*lists[s])->push_back(block);
      stages_.back().push_back(block);
      in_planes = planes_of[s];
    }
    register_module("layer" + std::to_string(s + 1), *lists[s]);
  }
  linear = register_module("linear", detail::make_linear(64, num_classes, true));
  kaiming_normal_weight(linear->weight);
}

at::Tensor CifarResNet::forward(const at::Tensor& x) {
  at::Tensor out = act1->forward(nn::batch_norm(bn1, conv1->forward(x)));
  for (auto& stage : stages_) {
    for (auto& block : stage) out = block->forward(out);
  }
  out = out.mean({2, 3});  // global average pool -> [N, 64]
  return linear->forward(out);
}

// ------------------------------------------------------------ lowering
// The same topology as the forward()s above, for the exporter.

LoweredValue CifarBasicBlockImpl::lower(Lowering& b, const std::string& prefix, LoweredValue x) {
  const LoweredValue y = b.conv(prefix + "conv1", conv1, x, bn1, act1);
  ResidualInput r{x, 1, 0};
  if (downsample()) {
    r.stride = 2;  // option_a_shortcut subsamples by 2
    r.pad_channels = static_cast<int>(pad_channels());
  }
  return b.conv(prefix + "conv2", conv2, y, bn2, act2, r);
}

void CifarResNet::lower(Lowering& b, LoweredValue x) {
  x = b.conv("conv1", conv1, x, bn1, act1);
  for (size_t s = 0; s < stages_.size(); ++s) {
    for (size_t i = 0; i < stages_[s].size(); ++i) {
      const std::string p = "layer" + std::to_string(s + 1) + "." + std::to_string(i) + ".";
      x = stages_[s][i]->lower(b, p, x);
    }
  }
  x = b.global_avg_pool("avgpool", x);
  b.linear("linear", linear, x, nullptr, nullptr);
}

}  // namespace pactq::models
