#include "pactq/export/reference_executor.h"

#include <ATen/ATen.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <map>
#include <stdexcept>
#include <type_traits>
#include <utility>
#include <variant>

#include "pactq/runtime/quant_format.h"

namespace pactq::export_ {

namespace {

// Integers of at most this magnitude are exact in float32 (double: 2^53), so
// any summation order of such partial sums gives the same result.
constexpr int64_t kExactInFloat = int64_t{1} << 24;

using rt::format::max_code;

// The real value of a code is a * scale with scale = alpha / n in float32.
float code_scale(const ValueType& t) {
  return rt::format::code_scale(t.alpha, t.bits);
}

ValueType type_of(const rt::OutputSpec& s) {
  ValueType t;
  if (s.codes) {
    t.codes = true;
    t.bits = s.bits;
    t.alpha = s.alpha;
  }
  return t;
}

at::Tensor per_channel(const std::vector<float>& v) {
  return at::tensor(v, at::TensorOptions().dtype(at::kFloat)).reshape({1, -1, 1, 1});
}

at::Tensor real(const at::Tensor& x, const ValueType& t) {
  return t.codes ? at::mul(x, code_scale(t)) : x;
}

// Section 2.2: FLOAT activation or the requant rule, in float32.
at::Tensor output(const at::Tensor& y, const rt::OutputSpec& s) {
  if (s.codes) {
    const int n = max_code(s.bits);
    const float inv =
        rt::format::requant_inverse(s.alpha, s.bits);  // once per node, as the runtime
    at::Tensor t = at::mul(y, inv);
    t = at::where(t > 0, t, 0.0);  // NaN -> 0
    t = at::where(t < n, t, static_cast<double>(n));
    return at::round(t);  // half to even, like nearbyint
  }
  if (s.act == rt::FloatAct::kNone) return y;
  at::Tensor r = at::where(y > 0, y, 0.0);
  if (s.act == rt::FloatAct::kClip) r = at::where(r < s.alpha, r, static_cast<double>(s.alpha));
  return r;
}

// y + option-A(r): r[:, :, ::stride, ::stride], zero channels on each side.
at::Tensor add_residual(const at::Tensor& y, const at::Tensor& r_real, const rt::Residual& res,
                        const std::string& node) {
  at::Tensor r = r_real;
  if (res.stride > 1) {
    const int64_t end = std::numeric_limits<int64_t>::max();
    r = r.slice(2, 0, end, res.stride).slice(3, 0, end, res.stride);
  }
  if (res.pad_channels > 0)
    r = at::constant_pad_nd(r, {0, 0, 0, 0, res.pad_channels, res.pad_channels});
  if (r.sizes() != y.sizes()) {
    throw std::invalid_argument(
        "reference executor: node '" + node + "': residual '" + res.input + "' gives shape " +
        c10::str(r.sizes()) + " after stride " + std::to_string(res.stride) + " and channel pad " +
        std::to_string(res.pad_channels) + ", the output is " + c10::str(y.sizes()));
  }
  return at::add(y, r);
}

// Sum of a window in the runtime's row-major tap order (padding adds +0, which
// leaves a float sum unchanged), [N, C, OH, OW].
at::Tensor window_sum(const at::Tensor& x, const rt::PoolNode& n) {
  const int64_t oh = (x.size(2) + 2 * n.pad_h - n.kernel_h) / n.stride_h + 1;
  const int64_t ow = (x.size(3) + 2 * n.pad_w - n.kernel_w) / n.stride_w + 1;
  const at::Tensor xp =
      (n.pad_h || n.pad_w) ? at::constant_pad_nd(x, {n.pad_w, n.pad_w, n.pad_h, n.pad_h}) : x;
  at::Tensor s = at::zeros({x.size(0), x.size(1), oh, ow}, x.options());
  for (int r = 0; r < n.kernel_h; ++r)
    for (int c = 0; c < n.kernel_w; ++c) {
      s = at::add(s, xp.slice(2, r, r + (oh - 1) * n.stride_h + 1, n.stride_h)
                         .slice(3, c, c + (ow - 1) * n.stride_w + 1, n.stride_w));
    }
  return s;
}

template <typename N>
const std::string& name_of(const N& n) {
  return n.name;
}

}  // namespace

struct ReferenceExecutor::Step {
  std::string name;
  ExportPlan::Node node;
  std::vector<size_t> inputs;
  std::vector<ValueType> in_types;
  ValueType out;
  bool exact = true;
  // conv / linear: integer path weights 2q - n_w in acc_dtype, float path real
  // weights in float32. scale/bias: epilogue, affine, or input mean/std.
  bool integer = false;
  at::ScalarType acc_dtype = at::kFloat;
  at::Tensor weight, scale, bias;
};

ReferenceExecutor::ReferenceExecutor(const ExportPlan& plan)
    : ReferenceExecutor(
          [&plan] {
            std::vector<ExportPlan::Node> nodes;
            for (const auto& s : plan.steps()) nodes.push_back(s.node);
            return nodes;
          }(),
          plan.output()) {}

ReferenceExecutor::~ReferenceExecutor() = default;
ReferenceExecutor::ReferenceExecutor(ReferenceExecutor&&) noexcept = default;
ReferenceExecutor& ReferenceExecutor::operator=(ReferenceExecutor&&) noexcept = default;

ReferenceExecutor::ReferenceExecutor(std::vector<ExportPlan::Node> nodes,
                                     const std::string& output) {
  if (nodes.empty() || !std::holds_alternative<rt::InputNode>(nodes.front())) {
    throw std::invalid_argument("reference executor: the first node must be the input node");
  }
  std::map<std::string, size_t> by_name;
  for (auto& node : nodes) {
    Step st;
    st.name = std::visit([](const auto& n) { return name_of(n); }, node);
    if (by_name.count(st.name)) {
      throw std::invalid_argument("reference executor: duplicate node name '" + st.name + "'");
    }
    auto input = [&](const std::string& in) {
      auto it = by_name.find(in);
      if (it == by_name.end()) {
        throw std::invalid_argument("reference executor: node '" + st.name + "': input '" + in +
                                    "' is not an earlier node");
      }
      st.inputs.push_back(it->second);
      st.in_types.push_back(steps_[it->second].out);
    };
    // Weights and epilogue of a conv/linear with K = in/groups * kh * kw.
    auto prepare_weights = [&](const rt::WeightData& w, int64_t out, int64_t k,
                               std::vector<int64_t> shape, const std::vector<float>& scale,
                               const std::vector<float>& bias) {
      const int64_t count = out * k;
      const bool codes = !w.codes.empty();
      if (static_cast<int64_t>(codes ? w.codes.size() : w.f32.size()) != count ||
          static_cast<int64_t>(scale.size()) != out || static_cast<int64_t>(bias.size()) != out) {
        throw std::invalid_argument("reference executor: node '" + st.name + "' has " +
                                    std::to_string(codes ? w.codes.size() : w.f32.size()) +
                                    " weights, " + std::to_string(scale.size()) + " scales, " +
                                    std::to_string(bias.size()) + " biases for " +
                                    std::to_string(out) + " outputs of K = " + std::to_string(k));
      }
      st.integer = codes && st.in_types[0].codes;
      st.exact = st.integer;
      st.scale = per_channel(scale);
      st.bias = per_channel(bias);
      std::vector<float> wf(static_cast<size_t>(count));
      if (st.integer) {
        const int64_t nw = max_code(w.bits), nx = max_code(st.in_types[0].bits);
        const int64_t bound = k * nw * nx;  // |any partial sum| <= bound
        if (!rt::format::int32_accumulator_fits(k, w.bits, st.in_types[0].bits)) {
          throw std::invalid_argument(
              "reference executor: node '" + st.name +
              "': int32 accumulator could overflow (K = " + std::to_string(k) + ")");
        }
        // float64 (exact below 2^53) when float32 could round, and for convs
        // when NNPACK (transform-based, not exact) might take a float32 conv.
        const bool nnpack = shape.size() == 4 && at::_nnpack_available();
        st.acc_dtype = bound < kExactInFloat && !nnpack ? at::kFloat : at::kDouble;
        for (int64_t i = 0; i < count; ++i) wf[i] = static_cast<float>(2 * w.codes[i] - nw);
      } else if (codes) {  // format.md: w = w_scale * ((float)(2q - n_w) / (float)n_w)
        for (int64_t i = 0; i < count; ++i)
          wf[i] = rt::format::weight_value(w.codes[i], w.bits, w.scale);
      } else {
        wf = w.f32;
      }
      st.weight = at::tensor(wf, at::TensorOptions().dtype(at::kFloat))
                      .reshape(shape)
                      .to(st.integer ? st.acc_dtype : at::kFloat);
    };

    if (auto* n = std::get_if<rt::InputNode>(&node)) {
      if (!steps_.empty()) {
        throw std::invalid_argument("reference executor: node '" + st.name +
                                    "': only the first node may be an input node");
      }
      std::vector<float> mean = n->mean, stdev = n->std;
      if (mean.empty()) mean.assign(n->channels, 0.f);
      if (stdev.empty()) stdev.assign(n->channels, 1.f);
      st.scale = per_channel(mean);
      st.bias = per_channel(stdev);
    } else if (auto* n = std::get_if<rt::ConvNode>(&node)) {
      input(n->input);
      if (!n->residual.input.empty()) input(n->residual.input);
      const int64_t cin_g = n->in_channels / n->groups;
      prepare_weights(n->weight, n->out_channels, cin_g * n->kernel_h * n->kernel_w,
                      {n->out_channels, cin_g, n->kernel_h, n->kernel_w}, n->out_scale,
                      n->out_bias);
      st.out = type_of(n->output);
    } else if (auto* n = std::get_if<rt::LinearNode>(&node)) {
      input(n->input);
      if (!n->residual.input.empty()) input(n->residual.input);
      prepare_weights(n->weight, n->out_features, n->in_features, {n->out_features, n->in_features},
                      n->out_scale, n->out_bias);
      st.out = type_of(n->output);
    } else if (auto* n = std::get_if<rt::PoolNode>(&node)) {
      input(n->input);
      st.out = n->max ? st.in_types[0] : type_of(n->output);
    } else if (auto* n = std::get_if<rt::GlobalAvgPoolNode>(&node)) {
      input(n->input);
      st.out = type_of(n->output);
    } else if (auto* n = std::get_if<rt::FlattenNode>(&node)) {
      input(n->input);
      st.out = st.in_types[0];
    } else if (auto* n = std::get_if<rt::AddNode>(&node)) {
      input(n->a);
      input(n->b);
      st.out = type_of(n->output);
    } else if (auto* n = std::get_if<rt::AffineNode>(&node)) {
      input(n->input);
      st.scale = per_channel(n->scale);
      st.bias = per_channel(n->bias);
      st.out = type_of(n->output);
    }
    st.node = std::move(node);
    by_name[st.name] = steps_.size();
    steps_.push_back(std::move(st));
  }
  output_ = steps_.size() - 1;
  if (!output.empty()) output_ = index(output);
}

size_t ReferenceExecutor::size() const {
  return steps_.size();
}
const std::string& ReferenceExecutor::name(size_t i) const {
  return steps_.at(i).name;
}
size_t ReferenceExecutor::output_index() const {
  return output_;
}
const std::vector<size_t>& ReferenceExecutor::inputs(size_t i) const {
  return steps_.at(i).inputs;
}
const ValueType& ReferenceExecutor::type(size_t i) const {
  return steps_.at(i).out;
}
bool ReferenceExecutor::exact(size_t i) const {
  return steps_.at(i).exact;
}

size_t ReferenceExecutor::index(const std::string& name) const {
  for (size_t i = 0; i < steps_.size(); ++i)
    if (steps_[i].name == name) return i;
  throw std::out_of_range("reference executor: no node named '" + name + "'");
}

at::Tensor ReferenceExecutor::run_node(size_t i, const std::vector<at::Tensor>& in) const {
  const Step& st = steps_.at(i);
  const size_t expected = st.inputs.empty() ? 1 : st.inputs.size();
  if (in.size() != expected) {
    throw std::invalid_argument("reference executor: node '" + st.name + "' takes " +
                                std::to_string(expected) + " inputs, got " +
                                std::to_string(in.size()));
  }
  for (const at::Tensor& t : in) {
    if (t.dim() != 4 || t.scalar_type() != at::kFloat) {
      throw std::invalid_argument("reference executor: node '" + st.name +
                                  "' needs float32 [N, C, H, W] inputs, got " +
                                  c10::str(t.sizes()) + " " + c10::str(t.scalar_type()));
    }
  }
  at::NoGradGuard no_grad;
  const at::Tensor& x = in[0];
  if (std::holds_alternative<rt::InputNode>(st.node)) {
    return at::div(at::sub(x, st.scale), st.bias);  // (p - mean) / std
  }
  if (auto* n = std::get_if<rt::ConvNode>(&st.node)) {
    at::Tensor acc;
    if (st.integer) {
      acc = at::conv2d(x.to(st.acc_dtype), st.weight, {}, {n->stride_h, n->stride_w},
                       {n->pad_h, n->pad_w}, {1, 1}, n->groups)
                .to(at::kFloat);  // an exact integer: the runtime's (float)acc
    } else {
      acc = at::conv2d(real(x, st.in_types[0]), st.weight, {}, {n->stride_h, n->stride_w},
                       {n->pad_h, n->pad_w}, {1, 1}, n->groups);
    }
    at::Tensor y = at::add(at::mul(acc, st.scale), st.bias);
    if (in.size() > 1) y = add_residual(y, real(in[1], st.in_types[1]), n->residual, st.name);
    return output(y, n->output);
  }
  if (auto* n = std::get_if<rt::LinearNode>(&st.node)) {
    const at::Tensor flat = x.reshape({x.size(0), -1});
    at::Tensor acc = st.integer ? at::linear(flat.to(st.acc_dtype), st.weight).to(at::kFloat)
                                : at::linear(real(flat, st.in_types[0]), st.weight);
    acc = acc.reshape({x.size(0), -1, 1, 1});
    at::Tensor y = at::add(at::mul(acc, st.scale), st.bias);
    if (in.size() > 1) y = add_residual(y, real(in[1], st.in_types[1]), n->residual, st.name);
    return output(y, n->output);
  }
  if (auto* n = std::get_if<rt::PoolNode>(&st.node)) {
    if (n->max) {
      // Padding is -inf and never wins. The runtime keeps `v > m ? v : m` from
      // -inf, so NaN never wins either (at::max_pool2d would propagate it).
      const at::Tensor xs = st.in_types[0].codes ? x : at::where(at::isnan(x), -INFINITY, x);
      return at::max_pool2d(xs, {n->kernel_h, n->kernel_w}, {n->stride_h, n->stride_w},
                            {n->pad_h, n->pad_w}, {1, 1}, false);
    }
    const float count = static_cast<float>(n->kernel_h * n->kernel_w);
    const at::Tensor s = window_sum(x, *n);  // codes: an exact integer sum
    return output(at::div(real(s, st.in_types[0]), count), n->output);
  }
  if (auto* n = std::get_if<rt::GlobalAvgPoolNode>(&st.node)) {
    const int64_t pixels = x.size(2) * x.size(3);
    const float count = static_cast<float>(pixels);
    at::Tensor s;
    if (st.in_types[0].codes) {
      s = x.to(at::kDouble).sum({2, 3}, true).to(at::kFloat);  // int sum, then (float)
    } else {                                                   // float32, pixels in row-major order
      const at::Tensor flat = x.reshape({x.size(0), x.size(1), pixels});
      s = at::zeros({x.size(0), x.size(1)}, x.options());
      for (int64_t p = 0; p < pixels; ++p) s = at::add(s, flat.select(2, p));
      s = s.reshape({x.size(0), x.size(1), 1, 1});
    }
    return output(at::div(real(s, st.in_types[0]), count), n->output);
  }
  if (std::holds_alternative<rt::FlattenNode>(st.node)) {
    return x.contiguous().reshape({x.size(0), -1, 1, 1});
  }
  if (auto* n = std::get_if<rt::AddNode>(&st.node)) {
    return output(at::add(real(x, st.in_types[0]), real(in[1], st.in_types[1])), n->output);
  }
  if (auto* n = std::get_if<rt::AffineNode>(&st.node)) {
    const at::Tensor y = at::add(at::mul(real(x, st.in_types[0]), st.scale), st.bias);
    return output(y, n->output);
  }
  throw std::logic_error("reference executor: node '" + st.name + "' has an unknown op");
}

std::vector<at::Tensor> ReferenceExecutor::run(const at::Tensor& pixels) const {
  std::vector<at::Tensor> values;
  values.reserve(steps_.size());
  for (size_t i = 0; i < steps_.size(); ++i) {
    std::vector<at::Tensor> in;
    if (steps_[i].inputs.empty()) in.push_back(pixels.to(at::kFloat).contiguous());
    for (size_t j : steps_[i].inputs) in.push_back(values[j]);
    values.push_back(run_node(i, in));
  }
  return values;
}

at::Tensor ReferenceExecutor::logits(const at::Tensor& pixels) const {
  const at::Tensor y = run(pixels).at(output_);
  return y.reshape({y.size(0), -1});
}

}  // namespace pactq::export_
