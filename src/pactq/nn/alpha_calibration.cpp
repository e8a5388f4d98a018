#include "pactq/nn/alpha_calibration.h"

#include <ATen/core/grad_mode.h>

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <vector>

#include "pactq/nn/pact_relu.h"
#include "pactq/quant/bits.h"

namespace pactq::nn {

AlphaCalibration parse_alpha_calibration(const std::string& spec) {
  AlphaCalibration c;
  if (spec == "mse") return c;
  if (spec.size() > 1 && spec[0] == 'p') {
    try {
      size_t used = 0;
      c.percentile = std::stod(spec.substr(1), &used);
      if (used == spec.size() - 1 && c.percentile > 0 && c.percentile <= 100) {
        c.kind = AlphaCalibration::Kind::kPercentile;
        return c;
      }
    } catch (const std::exception&) {
    }
  }
  throw std::invalid_argument("--alpha-init: calibration '" + spec +
                              "' is unknown (expected calibrate, calibrate:mse or "
                              "calibrate:pNN.N with 0 < NN.N <= 100)");
}

double calibrated_alpha(const at::Tensor& sample, int bits, const AlphaCalibration& how) {
  // Plain loops over a sorted copy: a few hundred thousand values, and no
  // thread pool to stall when the machine is busy.
  const at::Tensor flat = sample.detach().to(at::kCPU, at::kDouble).reshape({-1}).contiguous();
  std::vector<double> x(flat.data_ptr<double>(), flat.data_ptr<double>() + flat.numel());
  for (double& v : x) v = v > 0 ? v : 0.0;  // the activation's input after the clip at 0
  std::sort(x.begin(), x.end());
  const double max_input = x.empty() ? 0.0 : x.back();
  if (!(max_input > 0)) return 1.0;  // a dead layer: any positive clip passes zeros exactly
  if (how.kind == AlphaCalibration::Kind::kPercentile) {
    // Linear interpolation between order statistics (numpy's default).
    const double rank = how.percentile / 100.0 * static_cast<double>(x.size() - 1);
    const size_t lo = static_cast<size_t>(std::floor(rank));
    const size_t hi = std::min(lo + 1, x.size() - 1);
    const double q = x[lo] + (rank - static_cast<double>(lo)) * (x[hi] - x[lo]);
    return q > 0 ? q : max_input;
  }
  if (quant::is_full_precision(bits)) return max_input;
  // Grid search: the error is smooth in alpha with one broad minimum; 200
  // candidates up to the maximum resolve it to 0.5% of the range.
  const double n = static_cast<double>(quant::max_code(bits));
  const auto first_positive = std::upper_bound(x.begin(), x.end(), 0.0);
  double best_alpha = max_input, best_error = INFINITY;
  for (int i = 1; i <= 200; ++i) {
    const double alpha = max_input * i / 200.0;
    const double scale = n / alpha, step = alpha / n;
    double error = 0;  // zeros quantize exactly: only the positive values count
    for (auto it = first_positive; it != x.end(); ++it) {
      const double d = std::nearbyint(std::min(*it, alpha) * scale) * step - *it;
      error += d * d;
    }
    if (error < best_error) {
      best_error = error;
      best_alpha = alpha;
    }
  }
  return best_alpha;
}

AlphaCalibrator::AlphaCalibrator(AlphaCalibration how, int64_t sample_per_layer)
    : how_(how), per_layer_(sample_per_layer) {}

void AlphaCalibrator::observe(const PactReLUImpl& layer, const at::Tensor& input) {
  if (layer.kind() == ActivationKind::kRelu) return;
  // A quarter of the layer's budget per batch: several batches contribute.
  samples_[&layer].push_back(sample_of(input, per_layer_ / 4));
}

std::vector<AlphaCalibrator::LayerResult> AlphaCalibrator::apply(torch::nn::Module& model) const {
  std::vector<LayerResult> out;
  at::NoGradGuard no_grad;
  for (const auto& item : model.named_modules("", /*include_self=*/false)) {
    auto* act = dynamic_cast<PactReLUImpl*>(item.value().get());
    if (act == nullptr) continue;
    const auto it = samples_.find(act);
    if (it == samples_.end()) continue;
    at::Tensor all = at::cat(it->second);
    if (all.numel() > per_layer_) all = all.narrow(0, 0, per_layer_);
    LayerResult r;
    r.name = item.key();
    r.samples = all.numel();
    r.max_input = all.numel() > 0 ? all.max().item<double>() : 0.0;
    r.alpha = calibrated_alpha(all, act->bits(), how_);
    act->alpha.fill_(r.alpha);
    out.push_back(r);
  }
  return out;
}

}  // namespace pactq::nn
