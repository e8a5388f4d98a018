#include "pactq/nn/qconv2d.h"

#include <ATen/ATen.h>
#include <torch/nn/init.h>

#include <cmath>
#include <stdexcept>
#include <string>

#include "pactq/nn/layer_init.h"
#include "pactq/quant/bits.h"

namespace pactq::nn {

QConv2dImpl::QConv2dImpl(QConv2dOptions options)
    : options_(options), quantized_(options.wbits, options.wquant) {
  require_positive(options_.in_channels, "QConv2d", "in_channels");
  require_positive(options_.out_channels, "QConv2d", "out_channels");
  require_positive(options_.kernel_size, "QConv2d", "kernel_size");
  require_positive(options_.stride, "QConv2d", "stride");
  require_positive(options_.groups, "QConv2d", "groups");
  if (options_.in_channels % options_.groups != 0 || options_.out_channels % options_.groups != 0) {
    throw std::invalid_argument("QConv2d: channels " + std::to_string(options_.in_channels) + "->" +
                                std::to_string(options_.out_channels) +
                                " are not divisible by groups " + std::to_string(options_.groups));
  }
  reset();
}

void QConv2dImpl::reset() {
  const int64_t k = options_.kernel_size;
  weight = register_parameter(
      "weight", at::empty({options_.out_channels, options_.in_channels / options_.groups, k, k}));
  bias =
      options_.bias ? register_parameter("bias", at::empty({options_.out_channels})) : at::Tensor();
  init_like_pytorch(weight, bias, options_.in_channels / options_.groups * k * k);
}

at::Tensor QConv2dImpl::forward(const at::Tensor& x) {
  const int64_t s = options_.stride;
  const int64_t p = options_.padding;
  return at::conv2d(x, quantized_weight(), bias, {s, s}, {p, p}, {1, 1}, options_.groups);
}

void QConv2dImpl::pretty_print(std::ostream& stream) const {
  stream << "pactq::nn::QConv2d(" << options_.in_channels << ", " << options_.out_channels
         << ", kernel=" << options_.kernel_size << ", stride=" << options_.stride
         << ", padding=" << options_.padding;
  if (options_.groups != 1) stream << ", groups=" << options_.groups;
  stream << ", w=" << quant::bits_to_string(quantized_.bits()) << " "
         << quant::to_string(quantized_.kind()) << ")";
}

}  // namespace pactq::nn
