// Stub (tests/compat): the names torch_compat.h takes from LibTorch 2.x's optimiser header.
#pragma once
#define PACTQ_TORCH_2X_STUB 1

namespace c10 {
struct TensorImpl;
}  // namespace c10

namespace at {
class Tensor {
 public:
  c10::TensorImpl* unsafeGetTensorImpl() const;
};
}  // namespace at

namespace torch::optim {
class OptimizerParamState {
 public:
  virtual ~OptimizerParamState() = default;
};
}  // namespace torch::optim
