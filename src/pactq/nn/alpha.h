// Helpers for the PACT clipping levels of a whole model.
//
// Regularisation: the trainer puts every alpha in its own optimiser parameter
// group whose weight decay is --alpha-decay (lambda). With SGD that adds
// lambda * alpha to alpha's gradient, i.e. the penalty (lambda / 2) * alpha^2.
#pragma once
#include <ATen/ATen.h>
#include <torch/nn/module.h>

#include <string>
#include <utility>
#include <vector>

namespace pactq::nn {

// (module name, alpha) of every PactReLU whose alpha is learned.
std::vector<std::pair<std::string, at::Tensor>> learned_alphas(torch::nn::Module& model);

// Where alpha values enter from outside (an --init-from file, a checkpoint):
// raises std::invalid_argument naming `source` and the layer when the alpha of
// any clipping activation (learned or fixed) is not positive and finite.
void check_alphas(torch::nn::Module& model, const std::string& source);

// After an optimiser step: raises std::runtime_error naming the layer when an
// alpha is NaN or Inf, and clamps every alpha to at least `floor`. One host
// sync for the whole model (an AlphaGuard with check_every 1).
void guard_alphas(torch::nn::Module& model, double floor = 1e-3);

// The trainer's guard: after_step() clamps every learned alpha to `floor` on
// its device and records, device-side, each layer's first non-finite value
// (the clamp would turn -Inf into the floor); no host read. The finite check
// (one host read, naming the layer) runs every `check_every`-th step and on
// check(), e.g. when the loss turned out non-finite. On a GPU a host read is
// a sync that stalls the queue, hence the interval.
class AlphaGuard {
 public:
  explicit AlphaGuard(torch::nn::Module& model, int64_t check_every = 1, double floor = 1e-3);
  void after_step();
  void check();                                       // throws std::runtime_error
  int64_t host_reads() const { return host_reads_; }  // for tests: the syncs it caused

 private:
  std::vector<std::pair<std::string, at::Tensor>> alphas_;
  std::vector<int64_t> layer_of_;  // flat alpha element -> index in alphas_
  int64_t check_every_;
  double floor_;
  int64_t steps_ = 0;
  int64_t host_reads_ = 0;
  at::Tensor seen_bad_;   // bool, per element: non-finite at some step since the last check
  at::Tensor first_bad_;  // float, per element: the value it had then
};

}  // namespace pactq::nn
