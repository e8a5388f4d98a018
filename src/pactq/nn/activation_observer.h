// ActivationObserver: a look at every activation's input during one forward
// pass, for passes that need it (naming where a NaN appears, calibrating the
// clipping levels). While an observer is alive on a thread, every PactReLU on
// that thread shows it its input; the training step never has one, so the
// cost there is one thread-local read per activation.
#pragma once
#include <ATen/ATen.h>

namespace pactq::nn {

class PactReLUImpl;

class ActivationObserver {
 public:
  ActivationObserver();
  virtual ~ActivationObserver();
  ActivationObserver(const ActivationObserver&) = delete;
  ActivationObserver& operator=(const ActivationObserver&) = delete;

  // The innermost observer alive on this thread, or nullptr.
  static ActivationObserver* active();

  virtual void observe(const PactReLUImpl& layer, const at::Tensor& input) = 0;
  // True: the activations compute a plain ReLU while observed (calibration
  // sees each layer's input unaffected by the clipping of earlier layers).
  virtual bool full_precision() const { return false; }

 private:
  ActivationObserver* outer_;
};

// A uniform random subset of at most `count` elements of an observed input,
// flattened, float32, on the CPU: what observers keep of large inputs so that
// their memory stays bounded.
at::Tensor sample_of(const at::Tensor& input, int64_t count);

// The first activation whose input holds a NaN or Inf (a host sync per layer).
class NonFiniteProbe : public ActivationObserver {
 public:
  void observe(const PactReLUImpl& layer, const at::Tensor& input) override;
  const PactReLUImpl* first() const { return first_; }

 private:
  const PactReLUImpl* first_ = nullptr;
};

}  // namespace pactq::nn
