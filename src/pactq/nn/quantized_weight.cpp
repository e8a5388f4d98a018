#include "pactq/nn/quantized_weight.h"

#include <ATen/core/grad_mode.h>

#include "pactq/quant/bits.h"

namespace pactq::nn {

QuantizedWeight::QuantizedWeight(int bits, quant::WeightQuantKind kind) {
  set(bits, kind);
}

void QuantizedWeight::set(int bits, quant::WeightQuantKind kind) {
  quant::check_bits(bits, "weight", kind == quant::WeightQuantKind::kSawb ? 2 : 1);
  bits_ = bits;
  kind_ = kind;
  cached_ = at::Tensor();
  cached_version_ = -1;
}

at::Tensor QuantizedWeight::get(const at::Tensor& weight, bool training) {
  if (quant::is_full_precision(bits_)) return weight;
  if (training || at::GradMode::is_enabled()) {
    cached_ = at::Tensor();
    return quant::quantize_weight(weight, bits_, kind_);
  }
  const int64_t version = weight._version();
  const void* storage = weight.data_ptr();
  if (!cached_.defined() || version != cached_version_ || storage != cached_storage_) {
    cached_ = quant::quantize_weight(weight, bits_, kind_);
    cached_version_ = version;
    cached_storage_ = storage;
  }
  return cached_;
}

}  // namespace pactq::nn
