#include "pactq/export/exporter.h"

#include <ATen/ATen.h>
#include <fmt/format.h>
#include <torch/nn/modules/batchnorm.h>
#include <torch/nn/modules/pooling.h>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <limits>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <stdexcept>

#include "pactq/data/loader.h"
#include "pactq/data/registry.h"
#include "pactq/export/reference_executor.h"
#include "pactq/models/cifar_resnet.h"
#include "pactq/models/plain_nets.h"
#include "pactq/models/preact_resnet.h"
#include "pactq/nn/pact_relu.h"
#include "pactq/nn/qconv2d.h"
#include "pactq/nn/qlinear.h"
#include "pactq/quant/bits.h"
#include "pactq/quant/weight_quant.h"
#include "pactq/runtime/model.h"
#include "pactq/runtime/writer.h"
#include "pactq/train/checkpoint.h"
#include "pactq/train/data_setup.h"
#include "pactq/train/model_setup.h"

namespace pactq::export_ {

namespace {

using TorchFn = std::function<at::Tensor(const std::vector<at::Tensor>&)>;

std::vector<float> to_floats(const at::Tensor& t) {
  const at::Tensor c = t.detach().to(at::kFloat).contiguous().reshape({-1});
  const float* p = c.data_ptr<float>();
  return std::vector<float>(p, p + c.numel());
}

std::vector<double> to_doubles(const at::Tensor& t) {
  const at::Tensor c = t.detach().to(at::kDouble).contiguous().reshape({-1});
  const double* p = c.data_ptr<double>();
  return std::vector<double>(p, p + c.numel());
}

// Per-channel affine of an eval-mode BatchNorm (and a preceding layer's bias):
// y = scale * z + bias.
struct Fold {
  std::vector<double> scale, bias;
};

template <typename BN>
Fold fold_bn(const BN& bn, int64_t channels, const at::Tensor& layer_bias) {
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

// Output spec of a node whose value feeds `act` (null: no activation).
ValueType act_type(const nn::PactReLU& act, rt::OutputSpec* spec) {
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

// Weights of a conv/linear as the runtime stores them, and the factor the
// integer path folds into out_scale (w_scale / n_w).
struct Weights {
  rt::WeightData data;
  double int_factor = 1.0;
};

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
  out.int_factor = static_cast<double>(scale) / static_cast<double>(quant::max_code(q.bits()));
  return out;
}

at::Tensor apply_act(nn::PactReLU act, const at::Tensor& t) {
  return act ? act->forward(t) : t;
}

}  // namespace

// Builds an ExportPlan step by step, tracking each node's output type.
class PlanBuilder {
 public:
  explicit PlanBuilder(ExportPlan& plan) : plan_(plan) {}

  struct Value {
    std::string node;
    ValueType type;
  };

  Value input(const models::InputShape& shape, std::vector<float> mean, std::vector<float> std) {
    rt::InputNode n;
    n.name = "input";
    n.channels = static_cast<int>(shape.channels);
    n.height = static_cast<int>(shape.height);
    n.width = static_cast<int>(shape.width);
    n.mean = std::move(mean);
    n.std = std::move(std);
    return add(n.name, {}, n, ValueType{}, [](const std::vector<at::Tensor>& in) { return in[0]; });
  }

  // Optional residual input of a conv: r' = option-A(r) (or the value itself).
  struct ResidualIn {
    Value value;
    int stride = 1;
    int pad_channels = 0;
  };

  // act(bn(conv(x)) [+ residual])
  Value conv(const std::string& name, nn::QConv2d conv, const Value& x, torch::nn::BatchNorm2d bn,
             nn::PactReLU act, const std::optional<ResidualIn>& residual = std::nullopt) {
    const nn::QConv2dOptions& o = conv->options();
    rt::ConvNode n;
    n.name = name;
    n.input = x.node;
    n.in_channels = static_cast<int>(o.in_channels);
    n.out_channels = static_cast<int>(o.out_channels);
    n.kernel_h = n.kernel_w = static_cast<int>(o.kernel_size);
    n.stride_h = n.stride_w = static_cast<int>(o.stride);
    n.pad_h = n.pad_w = static_cast<int>(o.padding);
    n.groups = static_cast<int>(o.groups);
    Weights w = export_weight(conv->quantization(), conv->weight);
    const bool integer = !w.data.codes.empty() && x.type.codes;
    n.weight = std::move(w.data);
    const Fold f = fold_bn(bn, o.out_channels, conv->bias);
    const double in_scale = integer ? input_scale(x.type) : 1.0;
    fill_scales(f, integer ? w.int_factor * in_scale : 1.0, &n.out_scale, &n.out_bias);
    std::vector<std::string> inputs{x.node};
    if (residual) {
      n.residual.input = residual->value.node;
      n.residual.stride = residual->stride;
      n.residual.pad_channels = residual->pad_channels;
      inputs.push_back(residual->value.node);
    }
    const ValueType t = act_type(act, &n.output);
    count_weights(conv->weight, conv->bias, bn);
    const bool option_a = residual && (residual->stride != 1 || residual->pad_channels != 0);
    const int64_t pad = residual ? residual->pad_channels : 0;
    return add(name, inputs, n, t,
               [conv, bn, act, option_a, pad](const std::vector<at::Tensor>& in) mutable {
                 at::Tensor y = conv->forward(in[0]);
                 if (bn) y = bn->forward(y);
                 if (in.size() > 1) {
                   y = y + (option_a ? models::option_a_shortcut(in[1], pad) : in[1]);
                 }
                 return apply_act(act, y);
               });
  }

  // act(bn(fc(x))); x must be [F] (flatten / global pool output).
  Value linear(const std::string& name, nn::QLinear fc, const Value& x, torch::nn::BatchNorm1d bn,
               nn::PactReLU act) {
    const nn::QLinearOptions& o = fc->options();
    rt::LinearNode n;
    n.name = name;
    n.input = x.node;
    n.in_features = static_cast<int>(o.in_features);
    n.out_features = static_cast<int>(o.out_features);
    Weights w = export_weight(fc->quantization(), fc->weight);
    const bool integer = !w.data.codes.empty() && x.type.codes;
    n.weight = std::move(w.data);
    const Fold f = fold_bn(bn, o.out_features, fc->bias);
    const double in_scale = integer ? input_scale(x.type) : 1.0;
    fill_scales(f, integer ? w.int_factor * in_scale : 1.0, &n.out_scale, &n.out_bias);
    const ValueType t = act_type(act, &n.output);
    count_weights(fc->weight, fc->bias, bn);
    return add(name, {x.node}, n, t, [fc, bn, act](const std::vector<at::Tensor>& in) mutable {
      at::Tensor y = fc->forward(in[0]);
      if (bn) y = bn->forward(y);
      return apply_act(act, y);
    });
  }

  // act(bn(x)) on a FLOAT or CODES value (pre-activation ResNets).
  Value affine(const std::string& name, const Value& x, torch::nn::BatchNorm2d bn,
               nn::PactReLU act) {
    rt::AffineNode n;
    n.name = name;
    n.input = x.node;
    const int64_t channels = bn->options.num_features();
    const Fold f = fold_bn(bn, channels, at::Tensor());
    fill_scales(f, 1.0, &n.scale, &n.bias);
    const ValueType t = act_type(act, &n.output);
    count_weights(at::Tensor(), at::Tensor(), bn);
    return add(name, {x.node}, n, t, [bn, act](const std::vector<at::Tensor>& in) mutable {
      return apply_act(act, bn->forward(in[0]));
    });
  }

  Value max_pool(const std::string& name, torch::nn::MaxPool2d pool, const Value& x) {
    const auto& o = pool->options;
    if (o.ceil_mode() || (*o.dilation())[0] != 1 || (*o.dilation())[1] != 1) {
      throw std::invalid_argument("export: " + name + ": ceil mode / dilation not supported");
    }
    rt::PoolNode n;
    n.name = name;
    n.input = x.node;
    n.max = true;
    n.kernel_h = static_cast<int>((*o.kernel_size())[0]);
    n.kernel_w = static_cast<int>((*o.kernel_size())[1]);
    n.stride_h = static_cast<int>((*o.stride())[0]);
    n.stride_w = static_cast<int>((*o.stride())[1]);
    n.pad_h = static_cast<int>((*o.padding())[0]);
    n.pad_w = static_cast<int>((*o.padding())[1]);
    return add(name, {x.node}, n, x.type,
               [pool](const std::vector<at::Tensor>& in) mutable { return pool->forward(in[0]); });
  }

  Value global_avg_pool(const std::string& name, const Value& x) {
    rt::GlobalAvgPoolNode n;
    n.name = name;
    n.input = x.node;
    n.output = rt::OutputSpec::Float();
    return add(name, {x.node}, n, ValueType{}, [](const std::vector<at::Tensor>& in) {
      return in[0].mean({2, 3});
    });
  }

  Value flatten(const std::string& name, const Value& x) {
    rt::FlattenNode n;
    n.name = name;
    n.input = x.node;
    return add(name, {x.node}, n, x.type,
               [](const std::vector<at::Tensor>& in) { return in[0].flatten(1); });
  }

 private:
  static double input_scale(const ValueType& t) {
    // The runtime's real value of a code: a * (float)(alpha / n).
    const float s = t.alpha / static_cast<float>(quant::max_code(t.bits));
    return static_cast<double>(s);
  }

  static void fill_scales(const Fold& f, double factor, std::vector<float>* scale,
                          std::vector<float>* bias) {
    scale->resize(f.scale.size());
    bias->resize(f.bias.size());
    for (size_t c = 0; c < f.scale.size(); ++c) {
      (*scale)[c] = static_cast<float>(f.scale[c] * factor);
      (*bias)[c] = static_cast<float>(f.bias[c]);
    }
  }

  template <typename BN>
  void count_weights(const at::Tensor& w, const at::Tensor& b, const BN& bn) {
    int64_t n = 0;
    if (w.defined()) n += w.numel();
    if (b.defined()) n += b.numel();
    if (bn && bn->options.affine()) n += bn->weight.numel() + bn->bias.numel();
    plan_.fp32_weight_bytes_ += 4 * n;
  }

  Value add(const std::string& name, std::vector<std::string> inputs, ExportPlan::Node node,
            ValueType type, TorchFn fn) {
    for (const auto& s : plan_.steps_) {
      if (s.name == name) throw std::logic_error("export: duplicate node name " + name);
    }
    plan_.steps_.push_back(
        ExportPlan::Step{name, std::move(inputs), std::move(node), type, std::move(fn)});
    return Value{name, type};
  }

  ExportPlan& plan_;
};

namespace {

using Value = PlanBuilder::Value;

void walk_lenet(PlanBuilder& b, models::LeNet5& m, Value x) {
  x = b.conv("conv1", m.conv1, x, m.bn1, m.act1);
  x = b.max_pool("pool1", m.pool1, x);
  x = b.conv("conv2", m.conv2, x, m.bn2, m.act2);
  x = b.max_pool("pool2", m.pool2, x);
  x = b.flatten("flatten", x);
  x = b.linear("fc1", m.fc1, x, m.bn3, m.act3);
  x = b.linear("fc2", m.fc2, x, m.bn4, m.act4);
  b.linear("fc3", m.fc3, x, nullptr, nullptr);
}

void walk_svhn(PlanBuilder& b, models::Svhn7& m, Value x) {
  for (int i = 0; i < 7; ++i) {
    x = b.conv("conv" + std::to_string(i), m.conv.at(i), x, m.bn.at(i), m.act.at(i));
    if (i == 0) x = b.max_pool("pool0", m.pool0, x);
    if (i == 2) x = b.max_pool("pool1", m.pool1, x);
  }
  x = b.flatten("flatten", x);
  b.linear("fc", m.fc, x, nullptr, nullptr);
}

void walk_alexnet(PlanBuilder& b, models::AlexNetBN& m, Value x) {
  x = b.conv("conv1", m.conv1, x, m.bn1, m.act1);
  x = b.max_pool("pool1", m.pool1, x);
  x = b.conv("conv2", m.conv2, x, m.bn2, m.act2);
  x = b.max_pool("pool2", m.pool2, x);
  x = b.conv("conv3", m.conv3, x, m.bn3, m.act3);
  x = b.conv("conv4", m.conv4, x, m.bn4, m.act4);
  x = b.conv("conv5", m.conv5, x, m.bn5, m.act5);
  x = b.max_pool("pool5", m.pool5, x);
  x = b.flatten("flatten", x);
  x = b.linear("fc6", m.fc6, x, m.bn6, m.act6);
  x = b.linear("fc7", m.fc7, x, m.bn7, m.act7);
  b.linear("fc8", m.fc8, x, nullptr, nullptr);
}

void walk_cifar_resnet(PlanBuilder& b, models::CifarResNet& m, Value x) {
  x = b.conv("conv1", m.conv1, x, m.bn1, m.act1);
  for (size_t s = 0; s < m.stages().size(); ++s) {
    for (size_t i = 0; i < m.stages()[s].size(); ++i) {
      auto& blk = *m.stages()[s][i];
      const std::string p = "layer" + std::to_string(s + 1) + "." + std::to_string(i) + ".";
      const Value in = x;
      const Value y = b.conv(p + "conv1", blk.conv1, in, blk.bn1, blk.act1);
      PlanBuilder::ResidualIn r{in, 1, 0};
      if (blk.downsample()) {
        r.stride = 2;  // option_a_shortcut subsamples by 2
        r.pad_channels = static_cast<int>(blk.pad_channels());
      }
      x = b.conv(p + "conv2", blk.conv2, y, blk.bn2, blk.act2, r);
    }
  }
  x = b.global_avg_pool("avgpool", x);
  b.linear("linear", m.linear, x, nullptr, nullptr);
}

// Pre-activation blocks: out = y + (shortcut ? shortcut(p) : x) is the last conv
// with a residual input (FLOAT output: no activation after the sum).
Value walk_preact_basic(PlanBuilder& b, models::PreActBasicBlockImpl& blk, const std::string& p,
                        const Value& x) {
  const Value pre = blk.preact ? b.affine(p + "bn1", x, blk.bn1, blk.act1) : x;
  PlanBuilder::ResidualIn r{x, 1, 0};
  if (blk.shortcut) r.value = b.conv(p + "shortcut", blk.shortcut, pre, nullptr, nullptr);
  const Value y = b.conv(p + "conv1", blk.conv1, pre, blk.bn2, blk.act2);
  return b.conv(p + "conv2", blk.conv2, y, nullptr, nullptr, r);
}

Value walk_preact_bottleneck(PlanBuilder& b, models::PreActBottleneckImpl& blk,
                             const std::string& p, const Value& x) {
  const Value pre = blk.preact ? b.affine(p + "bn1", x, blk.bn1, blk.act1) : x;
  PlanBuilder::ResidualIn r{x, 1, 0};
  if (blk.shortcut) r.value = b.conv(p + "shortcut", blk.shortcut, pre, nullptr, nullptr);
  Value y = b.conv(p + "conv1", blk.conv1, pre, blk.bn2, blk.act2);
  y = b.conv(p + "conv2", blk.conv2, y, blk.bn3, blk.act3);
  return b.conv(p + "conv3", blk.conv3, y, nullptr, nullptr, r);
}

void walk_preact_resnet(PlanBuilder& b, models::PreActResNet& m, Value x) {
  x = b.conv("conv1", m.conv1, x, m.bn1, m.act1);
  x = b.max_pool("maxpool", m.maxpool, x);
  for (size_t s = 0; s < m.stages().size(); ++s) {
    for (size_t i = 0; i < m.stages()[s].size(); ++i) {
      const std::string p = "layer" + std::to_string(s + 1) + "." + std::to_string(i) + ".";
      if (m.bottleneck()) {
        x = walk_preact_bottleneck(b, *m.bottleneck_stages()[s][i].ptr(), p, x);
      } else {
        x = walk_preact_basic(b, *m.basic_stages()[s][i].ptr(), p, x);
      }
    }
  }
  x = b.affine("bn_final", x, m.bn_final, m.act_final);
  x = b.global_avg_pool("avgpool", x);
  b.linear("fc", m.fc, x, nullptr, nullptr);
}

}  // namespace

ExportPlan ExportPlan::build(models::QuantModel& model, std::vector<float> mean,
                             std::vector<float> std) {
  model.eval();
  at::NoGradGuard no_grad;
  ExportPlan plan;
  PlanBuilder b(plan);
  const models::InputShape shape = model.input_shape();
  const size_t c = static_cast<size_t>(shape.channels);
  if (mean.empty()) mean.assign(c, 0.f);
  if (std.empty()) std.assign(c, 1.f);
  if (mean.size() != c || std.size() != c) {
    throw std::invalid_argument(fmt::format(
        "export: normalisation has {} mean and {} std values, the model {} input channels",
        mean.size(), std.size(), c));
  }
  const Value x = b.input(shape, std::move(mean), std::move(std));
  if (auto* m = dynamic_cast<models::LeNet5*>(&model)) {
    walk_lenet(b, *m, x);
  } else if (auto* m = dynamic_cast<models::Svhn7*>(&model)) {
    walk_svhn(b, *m, x);
  } else if (auto* m = dynamic_cast<models::AlexNetBN*>(&model)) {
    walk_alexnet(b, *m, x);
  } else if (auto* m = dynamic_cast<models::CifarResNet*>(&model)) {
    walk_cifar_resnet(b, *m, x);
  } else if (auto* m = dynamic_cast<models::PreActResNet*>(&model)) {
    walk_preact_resnet(b, *m, x);
  } else {
    throw std::invalid_argument("export: model '" + model.model_name() +
                                "' has no exporter (supported: lenet5, svhn7, alexnet_bn, "
                                "resnet20/32/44/56, preact_resnet18/50)");
  }
  return plan;
}

void ExportPlan::add_to(rt::ModelWriter& w, const ExportMetadata& meta) const {
  for (const Step& s : steps_) std::visit([&](const auto& n) { w.add(n); }, s.node);
  w.set_output(output());
  if (!meta.model.empty()) w.set_model(meta.model);
  if (!meta.classes.empty()) w.set_classes(meta.classes);
  if (!meta.producer.empty()) w.set_producer(meta.producer);
  if (!meta.precision.empty()) w.set_metadata("precision", meta.precision);
  if (!meta.source.empty()) w.set_metadata("source", meta.source);
  w.set_metadata("fp32_weight_bytes", std::to_string(fp32_weight_bytes_));
}

std::vector<uint8_t> ExportPlan::serialize(const ExportMetadata& meta) const {
  rt::ModelWriter w;
  add_to(w, meta);
  return w.serialize(true);
}

size_t ExportPlan::write(const std::string& path, const ExportMetadata& meta) const {
  rt::ModelWriter w;
  add_to(w, meta);
  w.write(path, true);
  return static_cast<size_t>(std::filesystem::file_size(path));
}

std::vector<std::pair<std::string, at::Tensor>> ExportPlan::trace(const at::Tensor& x) const {
  at::NoGradGuard no_grad;
  std::vector<std::pair<std::string, at::Tensor>> values;
  std::map<std::string, size_t> index;
  for (const Step& s : steps_) {
    std::vector<at::Tensor> in;
    if (s.inputs.empty()) {
      in.push_back(x);
    } else {
      for (const auto& name : s.inputs) in.push_back(values.at(index.at(name)).second);
    }
    index[s.name] = values.size();
    values.emplace_back(s.name, s.torch_fn(in));
  }
  return values;
}

// ------------------------------------------------------------------ checkpoint

namespace {

struct Rebuilt {
  train::TrainConfig config;
  models::QuantModelPtr model;
};

Rebuilt rebuild(const std::string& checkpoint) {
  if (!std::filesystem::exists(checkpoint)) {
    throw std::runtime_error(checkpoint + ": checkpoint not found");
  }
  Rebuilt r;
  try {
    r.config = train::read_checkpoint_header(checkpoint).config;
    r.model = train::build_model(r.config, r.config.num_classes);
    train::load_checkpoint(checkpoint, *r.model, nullptr);
  } catch (const std::exception& e) {
    const std::string what = e.what();
    if (what.find(checkpoint) != std::string::npos) throw;
    throw std::runtime_error(checkpoint + ": " + what);
  }
  r.model->eval();
  return r;
}

// The dataset's class names (empty only when the dataset has none). A data
// set that cannot be read is an error: swallowing it wrote a .pqm without
// names and hid a wrong data_dir or a corrupt file.
// The dataset's class names. Exporting needs no data, so a dataset that
// cannot be read (exporting on another machine) leaves the names out with a
// warning that says why, instead of failing or staying silent.
std::vector<std::string> class_names_of(const std::string& checkpoint,
                                        const train::TrainConfig& config, std::string& warning) {
  try {
    const auto ds = data::open_dataset(config.dataset, config.data_dir, data::Split::Test);
    return ds->info().class_names;
  } catch (const std::exception& e) {
    const std::string dir =
        config.data_dir.empty() ? data::default_data_dir(config.dataset) : config.data_dir;
    warning =
        fmt::format("{}: class names not written: cannot read its dataset '{}' ({}): {}",
                    checkpoint, config.dataset,
                    dir.empty() ? std::string("no data dir") : "data dir '" + dir + "'", e.what());
    return {};
  }
}

}  // namespace

ExportReport export_checkpoint(const std::string& checkpoint, const std::string& out_path) {
  Rebuilt r = rebuild(checkpoint);
  const ExportPlan plan = ExportPlan::build(*r.model, r.config.mean, r.config.std);
  ExportMetadata meta;
  meta.model = r.model->model_name();
  std::string warning;
  meta.classes = class_names_of(checkpoint, r.config, warning);
  meta.precision = r.config.precision_policy().summary();
  meta.source = std::filesystem::absolute(checkpoint).string();
  ExportReport rep;
  rep.path = out_path;
  rep.file_bytes = plan.write(out_path, meta);
  rep.fp32_weight_bytes = plan.fp32_weight_bytes();
  rep.nodes = plan.steps().size();
  rep.model = meta.model;
  rep.precision = meta.precision;
  if (!warning.empty()) rep.warnings.push_back(warning);
  return rep;
}

// ------------------------------------------------------------------ verify

namespace {

// NaN when nothing was compared: 100% would claim a match that was never checked.
double percent_floor(int64_t matched, int64_t compared) {
  if (compared == 0) return std::numeric_limits<double>::quiet_NaN();
  return std::floor(1e6 * static_cast<double>(matched) / static_cast<double>(compared)) / 1e4;
}

}  // namespace

double VerifyResult::NodeMatch::match_percent() const {
  return percent_floor(matched, compared);
}
double VerifyResult::NodeMatch::ref_match_percent() const {
  return percent_floor(ref_matched, compared);
}

std::string VerifyResult::summary() const {
  // Code percentages, or said as such when no code was compared.
  const bool none = codes_compared == 0;
  const std::string fq_codes =
      none ? std::string("no codes compared")
           : fmt::format("{:.4f}% ({}/{})", percent_floor(codes_matched, codes_compared),
                         codes_matched, codes_compared);
  const std::string ref_codes =
      none ? std::string("no codes compared")
           : fmt::format("{:.4f}% ({}/{}) node by node on the runtime's inputs, {:.4f}% end to end",
                         percent_floor(ref_codes_matched, codes_compared), ref_codes_matched,
                         codes_compared, percent_floor(ref_chain_codes_matched, codes_compared));
  std::string s = fmt::format(
      "verify on {} images ({} for activation codes):\n"
      "  runtime vs fake-quantized LibTorch model: prediction agreement {:.2f}% ({}/{}), top-1 "
      "libtorch {:.2f}%, runtime {:.2f}%; exact activation codes {}; max |logit diff| {:.4g}\n"
      "  runtime vs LibTorch deploy-exact reference: prediction agreement {:.2f}% ({}/{}); exact "
      "activation codes {}; max |logit diff| {:.4g} for the output node on the runtime's inputs, "
      "{:.4g} end to end",
      images, code_images, agreement, agree, images, torch_top1, runtime_top1, fq_codes,
      max_logit_diff, ref_agreement, ref_agree, images, ref_codes, ref_output_logit_diff,
      ref_max_logit_diff);
  // The verdict on the runtime: integer-path nodes must match exactly.
  std::string bad, float_nodes;
  int exact_nodes = 0;
  int64_t float_compared = 0, float_matched = 0;
  for (const NodeMatch& n : per_node) {
    if (n.ref_exact) {
      ++exact_nodes;
      if (n.ref_matched != n.compared) bad += (bad.empty() ? "" : ", ") + n.node;
    } else {
      float_nodes += (float_nodes.empty() ? "" : ", ") + n.node;
      float_compared += n.compared;
      float_matched += n.ref_matched;
    }
  }
  if (codes_compared == 0) {
    return s + "\n  => no activation codes compared: the runtime's codes were not checked";
  }
  if (!bad.empty()) {
    s += "\n  => RUNTIME MISMATCH: integer-path node(s) " + bad +
         " differ from the deploy-exact reference";
    return s;
  }
  s += fmt::format("\n  => runtime exact: {} integer-path nodes bit-identical to the reference",
                   exact_nodes);
  if (!float_nodes.empty()) {
    s += fmt::format(
        "; float-path nodes ({}): {} of {} codes differ (LibTorch's float32 summation order)",
        float_nodes, float_compared - float_matched, float_compared);
  }
  return s;
}

namespace {

// A runtime node's output as the reference executor's value: [N, C, H, W]
// float32, CODES as the codes themselves.
at::Tensor runtime_value(const rt::NodeOutput& o) {
  const std::vector<int64_t> shape{o.batch, o.channels, o.height, o.width};
  if (o.codes) {
    return at::from_blob(const_cast<uint8_t*>(o.code_values.data()), shape,
                         at::TensorOptions().dtype(at::kByte))
        .to(at::kFloat);
  }
  return at::from_blob(const_cast<float*>(o.values.data()), shape,
                       at::TensorOptions().dtype(at::kFloat))
      .clone();
}

}  // namespace

VerifyResult verify(models::QuantModel& model, const ExportPlan& plan, rt::Model& runtime,
                    data::DataLoader& pixels, const std::vector<float>& mean,
                    const std::vector<float>& std, int64_t code_images) {
  const auto t0 = std::chrono::steady_clock::now();
  at::NoGradGuard no_grad;
  model.eval();
  VerifyResult r;
  const ReferenceExecutor ref(plan);
  const int64_t channels = model.input_shape().channels;
  at::Tensor mean_t = at::zeros({1, channels, 1, 1}), std_t = at::ones({1, channels, 1, 1});
  if (!mean.empty()) mean_t = at::tensor(mean).reshape({1, channels, 1, 1});
  if (!std.empty()) std_t = at::tensor(std).reshape({1, channels, 1, 1});
  // Codes nodes (compared); per node, whether a codes node reads it and the
  // last node reading its value.
  std::map<std::string, size_t> node_index;
  std::vector<size_t> last_use(ref.size());
  std::vector<bool> needed(ref.size(), false);
  for (size_t i = 0; i < ref.size(); ++i) {
    last_use[i] = i;
    for (size_t j : ref.inputs(i)) last_use[j] = i;
    if (ref.type(i).codes) {
      needed[i] = true;
      for (size_t j : ref.inputs(i)) needed[j] = true;
      node_index[ref.name(i)] = r.per_node.size();
      VerifyResult::NodeMatch nm;
      nm.node = ref.name(i);
      nm.ref_exact = ref.exact(i);
      r.per_node.push_back(nm);
    }
  }
  pixels.start_epoch(0);
  while (auto batch = pixels.next()) {
    const at::Tensor p = batch->images.to(at::kFloat).contiguous();
    const int64_t n = p.size(0);
    // Exactly the runtime input node: x = (p - mean) / std in float32.
    const at::Tensor x = (p - mean_t) / std_t;
    const at::Tensor logits = model.forward(x).to(at::kFloat).contiguous();
    const std::vector<float> rl = runtime.run(p.data_ptr<float>(), static_cast<int>(n));
    const at::Tensor rt_logits = at::from_blob(const_cast<float*>(rl.data()), logits.sizes(),
                                               at::TensorOptions().dtype(at::kFloat))
                                     .clone();
    const std::vector<at::Tensor> chain = ref.run(p);
    const at::Tensor ref_logits = chain.at(ref.output_index()).reshape(logits.sizes());
    {  // The output node alone, on the runtime's values of its inputs.
      const size_t out = ref.output_index();
      std::vector<at::Tensor> in;
      if (ref.inputs(out).empty()) in.push_back(p);
      for (size_t j : ref.inputs(out)) {
        in.push_back(runtime_value(
            runtime.debug_output(ref.name(j), p.data_ptr<float>(), static_cast<int>(n))));
      }
      const at::Tensor own = ref.run_node(out, in).reshape(logits.sizes());
      r.ref_output_logit_diff =
          std::max(r.ref_output_logit_diff, (own - rt_logits).abs().max().item<double>());
    }
    const at::Tensor tp = logits.argmax(1), rp = rt_logits.argmax(1);
    const at::Tensor labels = batch->labels.to(at::kLong);
    r.agree += tp.eq(rp).sum().item<int64_t>();
    r.ref_agree += ref_logits.argmax(1).eq(rp).sum().item<int64_t>();
    r.torch_correct += tp.eq(labels).sum().item<int64_t>();
    r.runtime_correct += rp.eq(labels).sum().item<int64_t>();
    r.max_logit_diff = std::max(r.max_logit_diff, (logits - rt_logits).abs().max().item<double>());
    r.ref_max_logit_diff =
        std::max(r.ref_max_logit_diff, (ref_logits - rt_logits).abs().max().item<double>());
    r.images += n;

    const int64_t k = std::min<int64_t>(n, code_images - r.code_images);
    if (k > 0 && !r.per_node.empty()) {
      const at::Tensor pk = p.slice(0, 0, k).contiguous();
      const auto values = plan.trace(x.slice(0, 0, k));
      // The runtime's value of every node (one runtime pass each), kept until
      // its last reader has run on it.
      std::vector<at::Tensor> mine(ref.size());
      for (size_t i = 0; i < ref.size(); ++i) {
        if (!needed[i]) continue;
        const rt::NodeOutput o =
            runtime.debug_output(ref.name(i), pk.data_ptr<float>(), static_cast<int>(k));
        mine[i] = runtime_value(o);
        auto it = node_index.find(ref.name(i));
        if (it != node_index.end()) {
          const at::Tensor got = mine[i].reshape({-1});
          // LibTorch's PACT output is code * (alpha / n): recover the code.
          const at::Tensor& t = values.at(i).second;
          const float scale_inv = static_cast<float>((1 << o.bits) - 1) / o.alpha;
          const at::Tensor codes =
              (t.to(at::kFloat).contiguous().reshape({-1}) * scale_inv).round();
          std::vector<at::Tensor> in;
          if (ref.inputs(i).empty()) in.push_back(pk);
          for (size_t j : ref.inputs(i)) in.push_back(mine[j]);
          const at::Tensor own = ref.run_node(i, in).reshape({-1});
          const at::Tensor chained = chain[i].slice(0, 0, k).reshape({-1});
          if (codes.numel() != got.numel() || own.numel() != got.numel()) {
            throw std::logic_error("verify: node " + ref.name(i) + " has " +
                                   std::to_string(got.numel()) + " runtime values, LibTorch " +
                                   std::to_string(codes.numel()) + ", the reference " +
                                   std::to_string(own.numel()));
          }
          auto& nm = r.per_node[it->second];
          const int64_t matched = got.eq(codes).sum().item<int64_t>();
          const int64_t ref_matched = got.eq(own).sum().item<int64_t>();
          nm.compared += got.numel();
          nm.matched += matched;
          nm.ref_matched += ref_matched;
          r.codes_compared += got.numel();
          r.codes_matched += matched;
          r.ref_codes_matched += ref_matched;
          r.ref_chain_codes_matched += got.eq(chained).sum().item<int64_t>();
        }
        for (size_t j : ref.inputs(i))
          if (last_use[j] == i) mine[j] = at::Tensor();
        if (last_use[i] == i) mine[i] = at::Tensor();
      }
      r.code_images += k;
    }
  }
  if (r.images > 0) {
    r.agreement = 100.0 * r.agree / r.images;
    r.ref_agreement = 100.0 * r.ref_agree / r.images;
    r.torch_top1 = 100.0 * r.torch_correct / r.images;
    r.runtime_top1 = 100.0 * r.runtime_correct / r.images;
  }
  r.code_match = percent_floor(r.codes_matched, r.codes_compared);
  r.ref_code_match = percent_floor(r.ref_codes_matched, r.codes_compared);
  r.ref_chain_code_match = percent_floor(r.ref_chain_codes_matched, r.codes_compared);
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return r;
}

VerifyResult verify_checkpoint(const std::string& checkpoint, const std::string& pqm,
                               int64_t images, const std::string& data_dir, int64_t code_images,
                               int threads) {
  Rebuilt r = rebuild(checkpoint);
  const ExportPlan plan = ExportPlan::build(*r.model, r.config.mean, r.config.std);
  rt::Model runtime = rt::Model::load(pqm);
  if (threads > 0) runtime.set_threads(threads);
  train::TrainConfig c = r.config;
  if (!data_dir.empty()) c.data_dir = data_dir;
  const size_t channels = static_cast<size_t>(r.model->input_shape().channels);
  c.mean.assign(channels, 0.f);  // pixels in [0, 1]: v / 255
  c.std.assign(channels, 1.f);
  c.init_from.clear();
  c.limit_test = images;
  c.batch_size = 256;
  auto loader = train::make_test_loader(c);
  return verify(*r.model, plan, runtime, *loader, r.config.mean, r.config.std, code_images);
}

}  // namespace pactq::export_
