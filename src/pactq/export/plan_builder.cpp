#include "pactq/export/plan_builder.h"

#include <ATen/ATen.h>
#include <ATen/core/grad_mode.h>
#include <torch/nn/modules/batchnorm.h>
#include <torch/nn/modules/pooling.h>

#include <stdexcept>

#include "pactq/export/layer_fold.h"
#include "pactq/models/cifar_resnet.h"
#include "pactq/models/registry.h"
#include "pactq/nn/pact_relu.h"
#include "pactq/nn/qconv2d.h"
#include "pactq/nn/qlinear.h"
#include "pactq/runtime/quant_format.h"

namespace pactq::export_ {

namespace {

using TorchFn = std::function<at::Tensor(const std::vector<at::Tensor>&)>;

at::Tensor apply_act(nn::PactReLU act, const at::Tensor& t) {
  return act ? act->forward(t) : t;
}

}  // namespace

// Builds an ExportPlan step by step, tracking each node's output type; the
// model drives it through its registered lowering.
class PlanBuilder : public models::Lowering {
 public:
  using LoweredValue = models::LoweredValue;

  explicit PlanBuilder(ExportPlan& plan) : plan_(plan) {}

  LoweredValue input(const models::InputShape& shape, std::vector<float> mean,
                     std::vector<float> std) {
    rt::InputNode n;
    n.name = "input";
    n.channels = static_cast<int>(shape.channels);
    n.height = static_cast<int>(shape.height);
    n.width = static_cast<int>(shape.width);
    n.mean = std::move(mean);
    n.std = std::move(std);
    return add(n.name, {}, n, ValueType{}, [](const std::vector<at::Tensor>& in) { return in[0]; });
  }

  LoweredValue linear(const std::string& name, nn::QLinear fc, LoweredValue xv,
                      torch::nn::BatchNorm1d bn, nn::PactReLU act) override {
    const Value x = value(xv);
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
    const ValueType t = activation_type(act, &n.output);
    count_weights(fc->weight, fc->bias, bn);
    return add(name, {x.node}, n, t, [fc, bn, act](const std::vector<at::Tensor>& in) mutable {
      at::Tensor y = fc->forward(in[0]);
      if (bn) y = bn->forward(y);
      return apply_act(act, y);
    });
  }

  LoweredValue affine(const std::string& name, LoweredValue xv, torch::nn::BatchNorm2d bn,
                      nn::PactReLU act) override {
    const Value x = value(xv);
    rt::AffineNode n;
    n.name = name;
    n.input = x.node;
    const int64_t channels = bn->options.num_features();
    const Fold f = fold_bn(bn, channels, at::Tensor());
    fill_scales(f, 1.0, &n.scale, &n.bias);
    const ValueType t = activation_type(act, &n.output);
    count_weights(at::Tensor(), at::Tensor(), bn);
    return add(name, {x.node}, n, t, [bn, act](const std::vector<at::Tensor>& in) mutable {
      return apply_act(act, bn->forward(in[0]));
    });
  }

  LoweredValue max_pool(const std::string& name, torch::nn::MaxPool2d pool,
                        LoweredValue xv) override {
    const Value x = value(xv);
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

  LoweredValue global_avg_pool(const std::string& name, LoweredValue xv) override {
    const Value x = value(xv);
    rt::GlobalAvgPoolNode n;
    n.name = name;
    n.input = x.node;
    n.output = rt::OutputSpec::Float();
    return add(name, {x.node}, n, ValueType{}, [](const std::vector<at::Tensor>& in) {
      return in[0].mean({2, 3});
    });
  }

  LoweredValue flatten(const std::string& name, LoweredValue xv) override {
    const Value x = value(xv);
    rt::FlattenNode n;
    n.name = name;
    n.input = x.node;
    return add(name, {x.node}, n, x.type,
               [](const std::vector<at::Tensor>& in) { return in[0].flatten(1); });
  }

 protected:
  LoweredValue conv_node(const std::string& name, nn::QConv2d conv, LoweredValue xv,
                         torch::nn::BatchNorm2d bn, nn::PactReLU act,
                         const models::ResidualInput* residual) override {
    const Value x = value(xv);
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
      const std::string r = value(residual->value).node;
      n.residual.input = r;
      n.residual.stride = residual->stride;
      n.residual.pad_channels = residual->pad_channels;
      inputs.push_back(r);
    }
    const ValueType t = activation_type(act, &n.output);
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

 private:
  // A node's name and output type.
  struct Value {
    std::string node;
    ValueType type;
  };

  Value value(LoweredValue v) const {
    if (v.id < 0 || static_cast<size_t>(v.id) >= values_.size()) {
      throw std::logic_error("export: a lowering used a value this builder did not give out");
    }
    return values_[v.id];
  }

  static double input_scale(const ValueType& t) {
    // The runtime's real value of a code: a * (float)(alpha / n).
    return static_cast<double>(rt::format::code_scale(t.alpha, t.bits));
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

  LoweredValue add(const std::string& name, std::vector<std::string> inputs, ExportPlan::Node node,
                   ValueType type, TorchFn fn) {
    for (const auto& s : plan_.steps_) {
      if (s.name == name) throw std::logic_error("export: duplicate node name " + name);
    }
    plan_.steps_.push_back(
        ExportPlan::Step{name, std::move(inputs), std::move(node), type, std::move(fn)});
    values_.push_back(Value{name, type});
    return LoweredValue{static_cast<int>(values_.size()) - 1};
  }

  ExportPlan& plan_;
  std::vector<Value> values_;  // indexed by LoweredValue::id
};

ExportPlan build_export_plan(models::QuantModel& model, std::vector<float> mean,
                             std::vector<float> std) {
  model.eval();
  at::NoGradGuard no_grad;
  ExportPlan plan;
  PlanBuilder b(plan);
  const models::InputShape shape = model.input_shape();
  resolve_normalization(shape.channels, mean, std);
  models::lower_model(model, b, b.input(shape, std::move(mean), std::move(std)));
  return plan;
}

}  // namespace pactq::export_
