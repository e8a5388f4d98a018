// NonFiniteProbe: finds the first activation whose input holds a NaN or Inf in
// one forward pass, so a diverging run can name the layer. While a probe is
// alive on a thread, every PactReLU on that thread reports its input (a host
// sync per layer: for the diagnostic pass after a non-finite loss only; the
// training step never has a probe).
#pragma once
#include <ATen/ATen.h>
#include <torch/nn/module.h>

namespace pactq::nn {

class NonFiniteProbe {
 public:
  NonFiniteProbe();
  ~NonFiniteProbe();
  NonFiniteProbe(const NonFiniteProbe&) = delete;
  NonFiniteProbe& operator=(const NonFiniteProbe&) = delete;

  // Called by the activations: cheap (a thread-local read) when no probe is alive.
  static void observe(const torch::nn::Module& layer, const at::Tensor& input);

  // The first layer whose input held a non-finite value, or nullptr.
  const torch::nn::Module* first() const { return first_; }

 private:
  const torch::nn::Module* first_ = nullptr;
  NonFiniteProbe* outer_;
};

}  // namespace pactq::nn
