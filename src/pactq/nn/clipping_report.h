// Where each clipping activation's quantization error comes from, in a model
// as it runs: the share of its inputs above alpha (clipped), the error the
// clip makes there and the rounding error below it, against the ReLU output
// the layer approximates; and the alpha that would minimise that error for the
// same inputs. The evidence for how a learned clip (PACT) and a fixed one
// (DoReFa) trade range against resolution, layer by layer.
//
//   ClippingRecorder rec;
//   for a few batches: model->forward(x)   // the layers quantize as usual
//   rec.report(model)                      // -> one LayerClipping per layer
#pragma once
#include <ATen/ATen.h>
#include <torch/nn/module.h>

#include <map>
#include <string>
#include <vector>

#include "pactq/nn/activation_observer.h"

namespace pactq::nn {

struct LayerClipping {
  std::string name;
  int bits = 0;
  double alpha = 0;
  int64_t samples = 0;
  double share_clipped = 0;  // inputs above alpha
  double share_zero = 0;     // inputs at or below 0 (exact after the clip at 0)
  // Mean squared error against relu(x), over all sampled inputs: from the
  // clip (x > alpha) and from rounding (0 < x <= alpha).
  double clip_mse = 0, round_mse = 0;
  double relu_power = 0;  // mean relu(x)^2: the errors relative to it compare layers
  double best_alpha = 0;  // the alpha minimising the total error on these inputs
  double best_mse = 0;
  double total_mse() const { return clip_mse + round_mse; }
};

// The same statistics for one layer's input sample at `bits` and `alpha`.
LayerClipping clipping_of(const at::Tensor& sample, int bits, double alpha);

class ClippingRecorder : public ActivationObserver {
 public:
  explicit ClippingRecorder(int64_t sample_per_layer = 1 << 18);
  void observe(const PactReLUImpl& layer, const at::Tensor& input) override;

  // Every observed quantized layer, in registration order.
  std::vector<LayerClipping> report(torch::nn::Module& model) const;

 private:
  int64_t per_layer_;
  std::map<const PactReLUImpl*, std::vector<at::Tensor>> samples_;
};

}  // namespace pactq::nn
