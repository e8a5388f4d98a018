#include "pactq/nn/pact_relu.h"

#include <ATen/ATen.h>

#include <stdexcept>

#include "pactq/nn/activation_observer.h"
#include "pactq/quant/bits.h"
#include "pactq/quant/pact.h"

namespace pactq::nn {

ActivationKind parse_activation_kind(const std::string& name) {
  if (name == "pact") return ActivationKind::kPact;
  if (name == "clip" || name == "dorefa") return ActivationKind::kClip;
  if (name == "relu") return ActivationKind::kRelu;
  throw std::invalid_argument("activation quantizer '" + name +
                              "' is unknown (expected pact, clip/dorefa or relu)");
}

std::string to_string(ActivationKind kind) {
  switch (kind) {
    case ActivationKind::kPact:
      return "pact";
    case ActivationKind::kClip:
      return "clip";
    case ActivationKind::kRelu:
      return "relu";
  }
  return "?";
}

namespace {
void validate(const PactReLUOptions& o) {
  quant::check_bits(o.bits, "activation");
  if (o.kind == ActivationKind::kRelu && !quant::is_full_precision(o.bits)) {
    throw std::invalid_argument("activation: relu cannot be quantized to " +
                                std::to_string(o.bits) + " bits (use pact or clip, or fp bits)");
  }
  if (!(o.alpha_init > 0.0)) {
    throw std::invalid_argument("activation: alpha init must be positive, got " +
                                std::to_string(o.alpha_init));
  }
}
}  // namespace

PactReLUImpl::PactReLUImpl(PactReLUOptions options) : options_(options) {
  validate(options_);
  reset();
}

void PactReLUImpl::reset() {
  // A fixed clip keeps alpha as a frozen parameter, so checkpoints and export
  // see it like a learned one.
  alpha = register_parameter("alpha", at::full({1}, options_.alpha_init, at::kFloat),
                             options_.kind == ActivationKind::kPact);
}

void PactReLUImpl::set_precision(int bits, ActivationKind kind) {
  PactReLUOptions next = options_;
  next.bits = bits;
  next.kind = kind;
  validate(next);
  options_ = next;
  alpha.set_requires_grad(kind == ActivationKind::kPact);
}

at::Tensor PactReLUImpl::forward(const at::Tensor& x) {
  if (ActivationObserver* observer = ActivationObserver::active()) {
    observer->observe(*this, x);
    if (observer->full_precision()) return at::relu(x);
  }
  if (options_.kind == ActivationKind::kRelu) return at::relu(x);
  // Under autocast (--amp) the layer before hands over bfloat16: PACT's
  // clipping, rounding and alpha gradient are computed in float32.
  if (x.scalar_type() == at::kBFloat16 || x.scalar_type() == at::kHalf) {
    return quant::pact(x.to(at::kFloat), alpha, options_.bits);
  }
  return quant::pact(x, alpha, options_.bits);
}

void PactReLUImpl::pretty_print(std::ostream& stream) const {
  stream << "pactq::nn::PactReLU(kind=" << to_string(options_.kind)
         << ", bits=" << quant::bits_to_string(options_.bits) << ")";
}

}  // namespace pactq::nn
