// QuantModel: the common base of the model zoo. Every model is built only from
// pactq's quantized layers (QConv2d, QLinear, PactReLU) and LibTorch
// BatchNorm, created at full precision (W32/A32, PACT activations); the caller
// sets the bit widths afterwards with nn::PrecisionPolicy::apply().
//
// Conventions kept by every model (the precision policy and the exporter rely
// on them; src/pactq/models/README.md spells out each forward):
//   - modules are registered in forward order, the classifier last, so the
//     first and last weight layers in named_modules() are the network's;
//   - BatchNorm (eps 1e-5, momentum 0.1, PyTorch names) before every activation;
//   - every submodule is typed (QConv2d, QLinear, PactReLU, BatchNorm1d/2d,
//     MaxPool2d, or a block class of this folder with public members);
//   - each model describes its inference graph in a lower() next to its
//     forward(), registered with it in registry.cpp (models/lowering.h).
#pragma once
#include <ATen/ATen.h>
#include <torch/nn/module.h>

#include <array>
#include <cstdint>
#include <memory>
#include <string>

namespace pactq::models {

// Input tensor shape of one sample: channels, height, width.
struct InputShape {
  int64_t channels = 3;
  int64_t height = 32;
  int64_t width = 32;
  bool operator==(const InputShape& o) const {
    return channels == o.channels && height == o.height && width == o.width;
  }
  bool operator!=(const InputShape& o) const { return !(*this == o); }
};

class QuantModel : public torch::nn::Module {
 public:
  // `name` is also torch::nn::Module::name().
  QuantModel(const std::string& name, InputShape input, int64_t num_classes)
      : torch::nn::Module(name), input_shape_(input), num_classes_(num_classes) {}

  // [N, C, H, W] float -> [N, num_classes] logits.
  virtual at::Tensor forward(const at::Tensor& x) = 0;

  // The model's registry name (e.g. "resnet20"); same as Module::name().
  const std::string& model_name() const { return name(); }
  InputShape input_shape() const { return input_shape_; }
  int64_t num_classes() const { return num_classes_; }

 private:
  InputShape input_shape_;
  int64_t num_classes_;
};

using QuantModelPtr = std::shared_ptr<QuantModel>;

struct ParameterCount {
  int64_t weights = 0;  // parameters of convs, linears and BatchNorm affine (trainable, float)
  int64_t alphas = 0;   // PACT clipping levels (one per activation layer)
  int64_t buffers = 0;  // BatchNorm running statistics (num_batches_tracked excluded)
  int64_t total() const { return weights + alphas; }
};

// Counts the elements of a module's parameters and buffers. A parameter whose
// name ends in "alpha" counts as an alpha.
ParameterCount count_parameters(const torch::nn::Module& model);

}  // namespace pactq::models
