#include "pactq/nn/qlinear.h"

#include <ATen/ATen.h>

#include "pactq/nn/layer_init.h"
#include "pactq/quant/bits.h"

namespace pactq::nn {

QLinearImpl::QLinearImpl(QLinearOptions options)
    : options_(options), quantized_(options.wbits, options.wquant) {
  require_positive(options_.in_features, "QLinear", "in_features");
  require_positive(options_.out_features, "QLinear", "out_features");
  reset();
}

void QLinearImpl::reset() {
  weight = register_parameter("weight", at::empty({options_.out_features, options_.in_features}));
  bias =
      options_.bias ? register_parameter("bias", at::empty({options_.out_features})) : at::Tensor();
  init_like_pytorch(weight, bias, options_.in_features);
}

at::Tensor QLinearImpl::forward(const at::Tensor& x) {
  return at::linear(x, quantized_weight(), bias);
}

void QLinearImpl::pretty_print(std::ostream& stream) const {
  stream << "pactq::nn::QLinear(" << options_.in_features << ", " << options_.out_features
         << ", w=" << quant::bits_to_string(quantized_.bits()) << " "
         << quant::to_string(quantized_.kind()) << ")";
}

}  // namespace pactq::nn
