// QLinear: a fully connected layer whose weights are quantized on the fly
// (DoReFa or SAWB). Parameter names are PyTorch's ("weight", "bias").
#pragma once
#include <torch/nn/cloneable.h>
#include <torch/nn/pimpl.h>

#include "pactq/nn/quantized_weight.h"

namespace pactq::nn {

struct QLinearOptions {
  int64_t in_features = 0;
  int64_t out_features = 0;
  bool bias = true;
  int wbits = 32;
  quant::WeightQuantKind wquant = quant::WeightQuantKind::kDoReFa;
};

class QLinearImpl : public torch::nn::Cloneable<QLinearImpl> {
 public:
  explicit QLinearImpl(QLinearOptions options);
  void reset() override;
  at::Tensor forward(const at::Tensor& x);
  void pretty_print(std::ostream& stream) const override;

  at::Tensor quantized_weight() { return quantized_.get(weight, is_training()); }
  QuantizedWeight& quantization() { return quantized_; }
  const QLinearOptions& options() const { return options_; }

  at::Tensor weight;
  at::Tensor bias;

 private:
  QLinearOptions options_;
  QuantizedWeight quantized_;
};
TORCH_MODULE(QLinear);

}  // namespace pactq::nn
