// PactReLU: the activation that replaces every ReLU. Owns the learnable
// clipping level alpha ("alpha", one value per layer) and quantizes its output
// to `bits` with quant::pact.
#pragma once
#include <torch/nn/cloneable.h>
#include <torch/nn/pimpl.h>

#include <string>

namespace pactq::nn {

enum class ActivationKind {
  kPact,  // learnable clip + k-bit quantization (fp: learnable clip only)
  kClip,  // fixed clip at alpha_init, quantized (DoReFa's activation with alpha 1)
  kRelu,  // plain ReLU; only valid at full precision
};
ActivationKind parse_activation_kind(const std::string& name);  // pact | clip | dorefa | relu
std::string to_string(ActivationKind kind);

struct PactReLUOptions {
  int bits = 4;
  double alpha_init = 10.0;
  ActivationKind kind = ActivationKind::kPact;
};

class PactReLUImpl : public torch::nn::Cloneable<PactReLUImpl> {
 public:
  explicit PactReLUImpl(PactReLUOptions options = {});
  void reset() override;
  at::Tensor forward(const at::Tensor& x);
  void pretty_print(std::ostream& stream) const override;

  int bits() const { return options_.bits; }
  ActivationKind kind() const { return options_.kind; }
  // Changes the width (and kind); validates the combination.
  void set_precision(int bits, ActivationKind kind);
  const PactReLUOptions& options() const { return options_; }

  at::Tensor alpha;  // shape [1]; frozen (no grad) unless kind is kPact

 private:
  PactReLUOptions options_;
};
TORCH_MODULE(PactReLU);

}  // namespace pactq::nn
