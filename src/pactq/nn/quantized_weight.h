// The weight-quantization state shared by QConv2d and QLinear: bit width,
// quantizer kind, and the eval-mode cache of the quantized weight (recomputed
// only when the float weight changes, tracked by its version counter).
#pragma once
#include <ATen/ATen.h>

#include <cstdint>

#include "pactq/quant/weight_quant.h"

namespace pactq::nn {

class QuantizedWeight {
 public:
  QuantizedWeight(int bits, quant::WeightQuantKind kind);

  // Training: quantized on the fly (with gradients). Eval: cached.
  at::Tensor get(const at::Tensor& weight, bool training);

  int bits() const { return bits_; }
  quant::WeightQuantKind kind() const { return kind_; }
  void set(int bits, quant::WeightQuantKind kind);

 private:
  int bits_;
  quant::WeightQuantKind kind_;
  at::Tensor cached_;
  const void* cached_storage_ = nullptr;
  int64_t cached_version_ = -1;
};

}  // namespace pactq::nn
