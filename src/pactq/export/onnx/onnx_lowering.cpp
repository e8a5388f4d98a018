#include "pactq/export/onnx/onnx_lowering.h"

#include <limits>
#include <stdexcept>

#include "pactq/common/format.h"
#include "pactq/export/layer_fold.h"
#include "pactq/runtime/quant_format.h"

namespace pactq::export_::onnx_export {

namespace {

std::vector<int64_t> dims_of(const at::Tensor& t) {
  return std::vector<int64_t>(t.sizes().begin(), t.sizes().end());
}

std::vector<float> to_float32(const std::vector<double>& v) {
  return std::vector<float>(v.begin(), v.end());
}

}  // namespace

OnnxLowering::OnnxLowering(onnx::GraphProto* graph, OnnxOptions options)
    : graph_(graph), g_(graph), options_(std::move(options)) {}

const OnnxLowering::Value& OnnxLowering::value(LoweredValue v) const {
  if (v.id < 0 || static_cast<size_t>(v.id) >= values_.size()) {
    throw std::logic_error("onnx export: a lowering used a value this builder did not give out");
  }
  return values_[v.id];
}

OnnxLowering::LoweredValue OnnxLowering::add_value(std::string tensor, ValueType type) {
  values_.push_back(Value{std::move(tensor), type});
  return LoweredValue{static_cast<int>(values_.size()) - 1};
}

std::string OnnxLowering::uint8_zero() {
  return g_.uint8s("uint8_zero", {}, {0});
}
std::string OnnxLowering::float_zero() {
  return g_.float_scalar("float_zero", 0.f);
}
std::string OnnxLowering::bitwidth(int bits) {
  return g_.float_scalar(pactq::format("bitwidth_{}", bits), static_cast<float>(bits));
}

OnnxLowering::LoweredValue OnnxLowering::input(const models::InputShape& shape,
                                               const std::vector<float>& mean,
                                               const std::vector<float>& std) {
  onnx::ValueInfoProto* in = graph_->add_input();
  in->set_name("pixels");
  in->set_doc_string("pixels scaled to [0, 1], NCHW float32 (the input of pactq run)");
  auto* t = in->mutable_type()->mutable_tensor_type();
  t->set_elem_type(onnx::TensorProto::FLOAT);
  t->mutable_shape()->add_dim()->set_dim_param("batch");
  for (int64_t d : {shape.channels, shape.height, shape.width}) {
    t->mutable_shape()->add_dim()->set_dim_value(d);
  }
  const std::vector<int64_t> dims{1, shape.channels, 1, 1};
  // (p - mean) / std exactly as the .pqm input node computes it: a subtract
  // and a divide in float32.
  g_.node("Sub", {"pixels", g_.floats("input.mean", dims, mean)}, "input.centered");
  g_.node("Div", {"input.centered", g_.floats("input.std", dims, std)}, "input");
  return add_value("input", ValueType{});
}

void OnnxLowering::finish(int64_t classes) {
  if (values_.empty() || graph_->node_size() == 0 ||
      graph_->node(graph_->node_size() - 1).output(0) != values_.back().tensor) {
    throw std::logic_error("onnx export: the model's last value is not the graph's last node");
  }
  g_.rename_last_output("logits");
  onnx::ValueInfoProto* out = graph_->add_output();
  out->set_name("logits");
  out->set_doc_string("class scores, [batch, classes] (the .pqm model's output)");
  auto* t = out->mutable_type()->mutable_tensor_type();
  t->set_elem_type(onnx::TensorProto::FLOAT);
  t->mutable_shape()->add_dim()->set_dim_param("batch");
  t->mutable_shape()->add_dim()->set_dim_value(classes);
}

std::string OnnxLowering::weight(const std::string& node, nn::QuantizedWeight& q,
                                 const at::Tensor& w) {
  const Weights wt = export_weight(q, w);
  const std::vector<int64_t> dims = dims_of(w);
  const std::string out = node + ".weight";
  if (wt.data.codes.empty()) return g_.floats(out, dims, wt.data.f32);
  const int bits = wt.data.bits;
  const int n = rt::format::max_code(bits);
  // The runtime's weight value is w_scale * (2q - n) / n: integers 2q - n
  // (odd, in [-n, n]) times one scale.
  const float scale = wt.data.scale / static_cast<float>(n);
  std::vector<int32_t> signed_codes(wt.data.codes.size());
  for (size_t i = 0; i < signed_codes.size(); ++i) signed_codes[i] = 2 * wt.data.codes[i] - n;

  if (options_.format == OnnxFormat::kQonnx) {
    // QONNX quantizes a float tensor: store the values the codes stand for;
    // the quantizer maps them back to exactly these codes.
    std::vector<float> real(signed_codes.size());
    if (bits == 1) {  // +-w_scale: BipolarQuant's two levels
      for (size_t i = 0; i < real.size(); ++i) real[i] = signed_codes[i] * wt.data.scale;
      g_.node("BipolarQuant",
              {g_.floats(node + ".weight_float", dims, real),
               g_.float_scalar(node + ".weight_scale", wt.data.scale)},
              out, kQonnxDomain);
      return out;
    }
    for (size_t i = 0; i < real.size(); ++i) real[i] = static_cast<float>(signed_codes[i]) * scale;
    // DoReFa's odd grid 2q - n needs k+1 signed bits with a zero zero-point
    // (narrow: [-n, n]); FINN's QONNX import accepts only zero zero-points.
    onnx::NodeProto& qn =
        g_.node(options_.qonnx_quant_op,
                {g_.floats(node + ".weight_float", dims, real),
                 g_.float_scalar(node + ".weight_scale", scale), float_zero(), bitwidth(bits + 1)},
                out, kQonnxDomain);
    OnnxGraph::set_int(qn, "signed", 1);
    OnnxGraph::set_int(qn, "narrow", 1);
    OnnxGraph::set_string(qn, "rounding_mode", "ROUND");
    return out;
  }

  // QCDQ: the codes themselves, in int8 (int32 for 8 bits: 2q - 255 needs 9),
  // clipped to the k-bit signed range, dequantized with scale w_scale / n.
  std::string codes, lo, hi, zero;
  if (bits <= 7) {
    codes = g_.int8s(node + ".weight_codes", dims,
                     std::vector<int8_t>(signed_codes.begin(), signed_codes.end()));
    lo = g_.int8s(pactq::format("weight_min_{}b", bits), {}, {static_cast<int8_t>(-n)});
    hi = g_.int8s(pactq::format("weight_max_{}b", bits), {}, {static_cast<int8_t>(n)});
    zero = g_.int8s("int8_zero", {}, {0});
  } else {
    codes = g_.int32s(node + ".weight_codes", dims, signed_codes);
    lo = g_.int32s(pactq::format("weight_min_{}b", bits), {}, {-n});
    hi = g_.int32s(pactq::format("weight_max_{}b", bits), {}, {n});
    zero = g_.int32s("int32_zero", {}, {0});
  }
  g_.node("Clip", {codes, lo, hi}, node + ".weight_codes_clipped");
  g_.node("DequantizeLinear",
          {node + ".weight_codes_clipped", g_.float_scalar(node + ".weight_scale", scale), zero},
          out);
  return out;
}

std::string OnnxLowering::fold(const std::string& node, std::string cur,
                               const std::vector<double>& scale, const std::vector<double>& bias,
                               std::vector<int64_t> channel_dims) {
  const std::vector<float> s = to_float32(scale), b = to_float32(bias);
  bool ones = true, zeros = true;
  for (float v : s) ones = ones && v == 1.f;
  for (float v : b) zeros = zeros && v == 0.f;
  if (!ones) {
    g_.node("Mul", {cur, g_.floats(node + ".bn_scale", channel_dims, s)}, node + ".scaled");
    cur = node + ".scaled";
  }
  if (!zeros) {
    g_.node("Add", {cur, g_.floats(node + ".bn_bias", channel_dims, b)}, node + ".biased");
    cur = node + ".biased";
  }
  return cur;
}

OnnxLowering::LoweredValue OnnxLowering::activate(const std::string& node, const std::string& cur,
                                                  nn::PactReLU act, int first) {
  rt::OutputSpec spec;
  const ValueType type = activation_type(act, &spec);
  if (spec.codes) {
    const int n = rt::format::max_code(spec.bits);
    // The .pqm's code step, alpha / n in float32.
    const std::string scale =
        g_.float_scalar(node + ".act_scale", rt::format::code_scale(spec.alpha, spec.bits));
    if (options_.format == OnnxFormat::kQonnx) {
      onnx::NodeProto& q =
          g_.node(options_.qonnx_quant_op, {cur, scale, float_zero(), bitwidth(spec.bits)}, node,
                  kQonnxDomain);
      OnnxGraph::set_int(q, "signed", 0);
      OnnxGraph::set_int(q, "narrow", 0);
      OnnxGraph::set_string(q, "rounding_mode", "ROUND");
    } else {
      g_.node("QuantizeLinear", {cur, scale, uint8_zero()}, node + ".quant");
      g_.node("Clip",
              {node + ".quant", uint8_zero(),
               g_.uint8s(pactq::format("act_max_{}b", spec.bits), {}, {static_cast<uint8_t>(n)})},
              node + ".codes");
      g_.node("DequantizeLinear", {node + ".codes", scale, uint8_zero()}, node);
    }
  } else if (spec.act == rt::FloatAct::kRelu) {
    g_.node("Relu", {cur}, node);
  } else if (spec.act == rt::FloatAct::kClip) {
    g_.node("Clip", {cur, float_zero(), g_.float_scalar(node + ".clip_max", spec.alpha)}, node);
  } else if (graph_->node_size() > first &&
             graph_->node(graph_->node_size() - 1).output(0) == cur) {
    g_.rename_last_output(node);
  } else {
    g_.node("Identity", {cur}, node);
  }
  return add_value(node, type);
}

OnnxLowering::LoweredValue OnnxLowering::conv_node(const std::string& name, nn::QConv2d conv,
                                                   LoweredValue xv, torch::nn::BatchNorm2d bn,
                                                   nn::PactReLU act,
                                                   const models::ResidualInput* residual) {
  const Value x = value(xv);
  const int first = graph_->node_size();
  const nn::QConv2dOptions& o = conv->options();
  const std::string w = weight(name, conv->quantization(), conv->weight);
  onnx::NodeProto& c = g_.node("Conv", {x.tensor, w}, name + ".conv");
  OnnxGraph::set_ints(c, "kernel_shape", {o.kernel_size, o.kernel_size});
  OnnxGraph::set_ints(c, "strides", {o.stride, o.stride});
  OnnxGraph::set_ints(c, "pads", {o.padding, o.padding, o.padding, o.padding});
  OnnxGraph::set_ints(c, "dilations", {1, 1});
  OnnxGraph::set_int(c, "group", o.groups);
  const Fold f = fold_bn(bn, o.out_channels, conv->bias);
  std::string cur = fold(name, name + ".conv", f.scale, f.bias, {o.out_channels, 1, 1});
  if (residual) {
    std::string r = value(residual->value).tensor;
    if (residual->stride != 1) {  // option A: every stride-th row and column
      const int64_t s = residual->stride;
      g_.node(
          "Slice",
          {r, g_.int64s("shortcut_starts", {2}, {0, 0}),
           g_.int64s("shortcut_ends", {2},
                     {std::numeric_limits<int64_t>::max(), std::numeric_limits<int64_t>::max()}),
           g_.int64s("shortcut_axes", {2}, {2, 3}),
           g_.int64s(pactq::format("shortcut_steps_{}", s), {2}, {s, s})},
          name + ".shortcut_sub");
      r = name + ".shortcut_sub";
    }
    if (residual->pad_channels != 0) {  // and zero channels on each side
      const int64_t p = residual->pad_channels;
      g_.node("Pad",
              {r, g_.int64s(pactq::format("shortcut_pads_{}", p), {8}, {0, p, 0, 0, 0, p, 0, 0})},
              name + ".shortcut");
      r = name + ".shortcut";
    }
    g_.node("Add", {cur, r}, name + ".sum");
    cur = name + ".sum";
  }
  return activate(name, cur, std::move(act), first);
}

OnnxLowering::LoweredValue OnnxLowering::linear(const std::string& name, nn::QLinear fc,
                                                LoweredValue xv, torch::nn::BatchNorm1d bn,
                                                nn::PactReLU act) {
  const Value x = value(xv);
  const int first = graph_->node_size();
  const nn::QLinearOptions& o = fc->options();
  const std::string w = weight(name, fc->quantization(), fc->weight);
  onnx::NodeProto& gemm = g_.node("Gemm", {x.tensor, w}, name + ".gemm");
  OnnxGraph::set_int(gemm, "transB", 1);
  const Fold f = fold_bn(bn, o.out_features, fc->bias);
  const std::string cur = fold(name, name + ".gemm", f.scale, f.bias, {o.out_features});
  return activate(name, cur, std::move(act), first);
}

OnnxLowering::LoweredValue OnnxLowering::affine(const std::string& name, LoweredValue xv,
                                                torch::nn::BatchNorm2d bn, nn::PactReLU act) {
  const Value x = value(xv);
  const int first = graph_->node_size();
  const int64_t channels = bn->options.num_features();
  const Fold f = fold_bn(bn, channels, at::Tensor());
  const std::string cur = fold(name, x.tensor, f.scale, f.bias, {channels, 1, 1});
  return activate(name, cur, std::move(act), first);
}

OnnxLowering::LoweredValue OnnxLowering::max_pool(const std::string& name,
                                                  torch::nn::MaxPool2d pool, LoweredValue xv) {
  const Value x = value(xv);
  const auto& o = pool->options;
  if (o.ceil_mode() || (*o.dilation())[0] != 1 || (*o.dilation())[1] != 1) {
    throw std::invalid_argument("export: " + name + ": ceil mode / dilation not supported");
  }
  // The max of codes times a positive scale is the max of the real values:
  // pooling the dequantized tensor keeps it on the same grid.
  onnx::NodeProto& p = g_.node("MaxPool", {x.tensor}, name);
  OnnxGraph::set_ints(p, "kernel_shape", {(*o.kernel_size())[0], (*o.kernel_size())[1]});
  OnnxGraph::set_ints(p, "strides", {(*o.stride())[0], (*o.stride())[1]});
  OnnxGraph::set_ints(p, "pads",
                      {(*o.padding())[0], (*o.padding())[1], (*o.padding())[0], (*o.padding())[1]});
  return add_value(name, x.type);
}

OnnxLowering::LoweredValue OnnxLowering::global_avg_pool(const std::string& name, LoweredValue xv) {
  const Value x = value(xv);
  g_.node("GlobalAveragePool", {x.tensor}, name + ".pool");
  OnnxGraph::set_int(g_.node("Flatten", {name + ".pool"}, name), "axis", 1);
  return add_value(name, ValueType{});
}

OnnxLowering::LoweredValue OnnxLowering::flatten(const std::string& name, LoweredValue xv) {
  const Value x = value(xv);
  OnnxGraph::set_int(g_.node("Flatten", {x.tensor}, name), "axis", 1);
  return add_value(name, x.type);
}

}  // namespace pactq::export_::onnx_export
