// Statistics-based initial clipping levels (PACT.md section 1: "a
// statistics-based init is a useful option"). A short fine-tune barely moves
// alpha from its init (few BN-normalised activations exceed alpha = 6, so only
// the decay acts): the init decides the quantization step. Calibration sets
// each layer's alpha from its own input distribution in the initial model.
//
//   AlphaCalibrator calib(parse_alpha_calibration("mse"));
//   for a few batches: model->forward(x)    // activations run as plain ReLU
//   calib.apply(model)                      // -> per-layer report
#pragma once
#include <ATen/ATen.h>
#include <torch/nn/module.h>

#include <map>
#include <string>
#include <vector>

#include "pactq/nn/activation_observer.h"

namespace pactq::nn {

struct AlphaCalibration {
  enum class Kind {
    kMse,         // the alpha minimising E[(quantize(clamp(x, 0, alpha)) - relu(x))^2]
    kPercentile,  // that percentile of the input
  };
  Kind kind = Kind::kMse;
  double percentile = 99.9;
};

// "mse" or "pNN.N" (0 < NN.N <= 100); throws std::invalid_argument naming
// --alpha-init otherwise.
AlphaCalibration parse_alpha_calibration(const std::string& spec);

// The calibrated alpha for one layer's input sample at `bits` (32: no
// quantization, only the clip: mse then keeps the largest value).
double calibrated_alpha(const at::Tensor& sample, int bits, const AlphaCalibration& how);

// Collects a bounded random sample of every clipping activation's input
// (pact and fixed clip alike) while alive; the activations compute plain
// ReLUs meanwhile.
class AlphaCalibrator : public ActivationObserver {
 public:
  explicit AlphaCalibrator(AlphaCalibration how, int64_t sample_per_layer = 1 << 18);
  void observe(const PactReLUImpl& layer, const at::Tensor& input) override;
  bool full_precision() const override { return true; }

  struct LayerResult {
    std::string name;
    double alpha = 0;
    double max_input = 0;
    int64_t samples = 0;
  };
  // Sets every observed layer's alpha; returns them in registration order.
  std::vector<LayerResult> apply(torch::nn::Module& model) const;

 private:
  AlphaCalibration how_;
  int64_t per_layer_;
  std::map<const PactReLUImpl*, std::vector<at::Tensor>> samples_;
};

}  // namespace pactq::nn
