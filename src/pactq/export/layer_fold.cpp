#include "pactq/export/layer_fold.h"

#include <cmath>
#include <stdexcept>
#include <string>

#include "pactq/quant/bits.h"
#include "pactq/quant/weight_quant.h"
#include "pactq/runtime/quant_format.h"

namespace pactq::export_ {

namespace {

std::vector<double> to_doubles(const at::Tensor& t) {
  const at::Tensor c = t.detach().to(at::kDouble).contiguous().reshape({-1});
  const double* p = c.data_ptr<double>();
  return std::vector<double>(p, p + c.numel());
}

template <typename BN>
Fold fold(const BN& bn, int64_t channels, const at::Tensor& layer_bias) {
  Fold f;
  f.scale.assign(channels, 1.0);
  f.bias.assign(channels, 0.0);
  if (layer_bias.defined()) f.bias = to_doubles(layer_bias);
  if (!bn) return f;
  const auto& o = bn->options;
  if (!o.track_running_stats()) {
    throw std::invalid_argument("export: BatchNorm without running statistics is not supported");
  }
  const std::vector<double> mu = to_doubles(bn->running_mean);
  const std::vector<double> var = to_doubles(bn->running_var);
  std::vector<double> gamma(channels, 1.0), beta(channels, 0.0);
  if (o.affine()) {
    gamma = to_doubles(bn->weight);
    beta = to_doubles(bn->bias);
  }
  if (static_cast<int64_t>(mu.size()) != channels) {
    throw std::invalid_argument("export: BatchNorm has " + std::to_string(mu.size()) +
                                " channels, the layer " + std::to_string(channels));
  }
  for (int64_t c = 0; c < channels; ++c) {
    const double s = gamma[c] / std::sqrt(var[c] + o.eps());
    f.bias[c] = beta[c] + s * (f.bias[c] - mu[c]);
    f.scale[c] = s;
  }
  return f;
}

}  // namespace

std::vector<float> to_floats(const at::Tensor& t) {
  const at::Tensor c = t.detach().to(at::kFloat).contiguous().reshape({-1});
  const float* p = c.data_ptr<float>();
  return std::vector<float>(p, p + c.numel());
}

void resolve_normalization(int64_t channels, std::vector<float>& mean, std::vector<float>& std) {
  const size_t c = static_cast<size_t>(channels);
  if (mean.empty()) mean.assign(c, 0.f);
  if (std.empty()) std.assign(c, 1.f);
  if (mean.size() != c || std.size() != c) {
    throw std::invalid_argument("export: normalisation has " + std::to_string(mean.size()) +
                                " mean and " + std::to_string(std.size()) +
                                " std values, the model " + std::to_string(c) + " input channels");
  }
}

Fold fold_bn(const torch::nn::BatchNorm2d& bn, int64_t channels, const at::Tensor& layer_bias) {
  return fold(bn, channels, layer_bias);
}

Fold fold_bn(const torch::nn::BatchNorm1d& bn, int64_t channels, const at::Tensor& layer_bias) {
  return fold(bn, channels, layer_bias);
}

ValueType activation_type(const nn::PactReLU& act, rt::OutputSpec* spec) {
  ValueType v;
  if (!act) {
    *spec = rt::OutputSpec::Float();
    return v;
  }
  const float alpha = act->alpha.detach().to(at::kFloat).reshape({-1})[0].item<float>();
  if (act->kind() == nn::ActivationKind::kRelu) {
    *spec = rt::OutputSpec::Float(rt::FloatAct::kRelu);
  } else if (quant::is_full_precision(act->bits())) {
    *spec = rt::OutputSpec::Float(rt::FloatAct::kClip, alpha);
  } else {
    if (!(alpha > 0.f) || !std::isfinite(alpha)) {
      throw std::invalid_argument("export: activation alpha must be positive and finite, got " +
                                  std::to_string(alpha));
    }
    *spec = rt::OutputSpec::Codes(act->bits(), alpha);
    v.codes = true;
    v.bits = act->bits();
    v.alpha = alpha;
  }
  return v;
}

Weights export_weight(nn::QuantizedWeight& q, const at::Tensor& w) {
  Weights out;
  if (quant::is_full_precision(q.bits())) {
    out.data = rt::WeightData::Float(to_floats(w));
    return out;
  }
  const quant::WeightCodes wc = quant::weight_codes(w.detach(), q.bits(), q.kind());
  const at::Tensor codes = wc.codes.to(at::kByte).contiguous().reshape({-1});
  const uint8_t* p = codes.data_ptr<uint8_t>();
  const float scale = static_cast<float>(wc.scale);
  out.data = rt::WeightData::Codes(std::vector<uint8_t>(p, p + codes.numel()), q.bits(), scale);
  out.int_factor = static_cast<double>(scale) / static_cast<double>(rt::format::max_code(q.bits()));
  return out;
}

}  // namespace pactq::export_
