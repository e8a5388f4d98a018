// QConv2d: a convolution whose weights are quantized on the fly (DoReFa or SAWB). Parameter names
// are PyTorch's ("weight", "bias"), so float state dicts load by name.
#pragma once
#include <torch/nn/cloneable.h>
#include <torch/nn/pimpl.h>

#include <vector>

#include "pactq/nn/quantized_weight.h"

namespace pactq::nn {

struct QConv2dOptions {
  int64_t in_channels = 0;
  int64_t out_channels = 0;
  int64_t kernel_size = 3;
  int64_t stride = 1;
  int64_t padding = 0;
  int64_t groups = 1;
  bool bias = false;
  int wbits = 32;
  quant::WeightQuantKind wquant = quant::WeightQuantKind::kDoReFa;
};

class QConv2dImpl : public torch::nn::Cloneable<QConv2dImpl> {
 public:
  explicit QConv2dImpl(QConv2dOptions options);
  void reset() override;
  at::Tensor forward(const at::Tensor& x);
  void pretty_print(std::ostream& stream) const override;

  // The weight as the forward pass uses it (fake-quantized).
  at::Tensor quantized_weight() { return quantized_.get(weight, is_training()); }
  QuantizedWeight& quantization() { return quantized_; }
  const QConv2dOptions& options() const { return options_; }

  at::Tensor weight;
  at::Tensor bias;  // undefined without bias

 private:
  QConv2dOptions options_;
  QuantizedWeight quantized_;
};
TORCH_MODULE(QConv2d);

}  // namespace pactq::nn
