#include "pactq/nn/clipping_report.h"

#include <algorithm>
#include <cmath>

#include "pactq/nn/alpha_calibration.h"
#include "pactq/nn/pact_relu.h"
#include "pactq/quant/bits.h"

namespace pactq::nn {

namespace {

// Everything but the best alpha.
LayerClipping errors_at(const at::Tensor& sample, int bits, double alpha) {
  LayerClipping r;
  r.bits = bits;
  r.alpha = alpha;
  const at::Tensor flat = sample.detach().to(at::kCPU, at::kDouble).reshape({-1}).contiguous();
  const double* x = flat.data_ptr<double>();
  const int64_t count = flat.numel();
  r.samples = count;
  if (count == 0) return r;
  // The layer's own rounding: codes round(min(x, alpha) * n / alpha), step alpha / n.
  const bool quantized = !quant::is_full_precision(bits);
  const double n = quantized ? static_cast<double>(quant::max_code(bits)) : 1.0;
  int64_t clipped = 0, zero = 0;
  for (int64_t i = 0; i < count; ++i) {
    const double v = x[i];
    if (v <= 0) {
      ++zero;
      continue;
    }
    r.relu_power += v * v;
    if (v > alpha) {
      ++clipped;
      const double q = alpha;  // the top code is exactly alpha
      r.clip_mse += (v - q) * (v - q);
    } else if (quantized) {
      const double d = std::nearbyint(v * n / alpha) * (alpha / n) - v;
      r.round_mse += d * d;
    }
  }
  const double c = static_cast<double>(count);
  r.share_clipped = clipped / c;
  r.share_zero = zero / c;
  r.clip_mse /= c;
  r.round_mse /= c;
  r.relu_power /= c;
  return r;
}

}  // namespace

LayerClipping clipping_of(const at::Tensor& sample, int bits, double alpha) {
  LayerClipping r = errors_at(sample, bits, alpha);
  AlphaCalibration mse;
  mse.kind = AlphaCalibration::Kind::kMse;
  r.best_alpha = calibrated_alpha(sample, bits, mse);
  r.best_mse = errors_at(sample, bits, r.best_alpha).total_mse();
  return r;
}

ClippingRecorder::ClippingRecorder(int64_t sample_per_layer) : per_layer_(sample_per_layer) {}

void ClippingRecorder::observe(const PactReLUImpl& layer, const at::Tensor& input) {
  if (layer.kind() == ActivationKind::kRelu) return;
  // A quarter of the layer's budget per batch: several batches contribute.
  samples_[&layer].push_back(sample_of(input, per_layer_ / 4));
}

std::vector<LayerClipping> ClippingRecorder::report(torch::nn::Module& model) const {
  std::vector<LayerClipping> out;
  for (const auto& item : model.named_modules("", /*include_self=*/false)) {
    const auto* act = dynamic_cast<const PactReLUImpl*>(item.value().get());
    if (act == nullptr) continue;
    const auto it = samples_.find(act);
    if (it == samples_.end() || quant::is_full_precision(act->bits())) continue;
    at::Tensor all = at::cat(it->second);
    if (all.numel() > per_layer_) all = all.narrow(0, 0, per_layer_);
    LayerClipping r = clipping_of(all, act->bits(), act->alpha.item<double>());
    r.name = item.key();
    out.push_back(r);
  }
  return out;
}

}  // namespace pactq::nn
