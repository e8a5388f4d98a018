// input, flatten, add and affine: the writer's form, the loader's validation
// and the run, in one place.
#include <cmath>
#include <cstring>

#include "pactq/runtime/ops/op_table.h"

namespace pactq::rt::detail {

namespace k = kernels;

// ------------------------------------------------------------ input

NodeRecord write_node(const InputNode& n) {
  writer_require(n.mean.empty() || static_cast<int>(n.mean.size()) == n.channels, n.name,
                 "mean needs one value per channel");
  writer_require(n.std.empty() || static_cast<int>(n.std.size()) == n.channels, n.name,
                 "std needs one value per channel");
  NodeRecord rec;
  json& j = rec.node;
  j["name"] = n.name;
  j["op"] = kInputOp.name;
  j["inputs"] = json::array();
  json a;
  a["channels"] = n.channels;
  a["height"] = n.height;
  a["width"] = n.width;
  const size_t c = n.channels > 0 ? static_cast<size_t>(n.channels) : 0;
  a["mean"] = n.mean.empty() ? std::vector<float>(c, 0.f) : n.mean;
  a["std"] = n.std.empty() ? std::vector<float>(c, 1.f) : n.std;
  j["attrs"] = a;
  j["output"] = output_json(OutputSpec::Float());
  j["tensors"] = json::object();
  return rec;
}

namespace {

void parse_input(NodeParser& p) {
  Node& nd = p.node;
  const int ch = p.get_int(p.attrs, "channels", 1, 4096);
  const int h = p.get_int(p.attrs, "height", 1, 65536);
  const int w = p.get_int(p.attrs, "width", 1, 65536);
  nd.out = value_of(OutputSpec::Float(), ch, h, w);
  p.check_value(nd.out);
  for (const char* key : {"mean", "std"}) {
    const json& a = p.member(p.attrs, key);
    if (!a.is_array() || static_cast<int>(a.size()) != ch) {
      p.fail(std::string("'") + key + "' needs " + std::to_string(ch) + " values");
    }
    std::vector<float>& dst = key[0] == 'm' ? nd.mean : nd.stdev;
    for (const json& x : a) {
      if (!x.is_number()) p.fail(std::string("'") + key + "' values must be numbers");
      const double d = x.get<double>();
      if (!std::isfinite(d) || std::fabs(d) > 1e30) p.fail(std::string(key) + " not finite");
      dst.push_back(static_cast<float>(d));
    }
  }
  for (float s : nd.stdev)
    if (s == 0.f) p.fail("std must be non-zero");
}

// NCHW pixels -> the NHWC normalised image x = (p - mean[c]) / std[c].
void run_input(const Node& nd, const RunArgs& a) {
  const int ch = nd.out.c;
  const size_t hw = static_cast<size_t>(nd.out.h) * nd.out.w;
  a.pool.parallel_for(a.batch, [&](int b) {
    const float* src = a.pixels + static_cast<size_t>(b) * ch * hw;
    float* dst = static_cast<float*>(a.value(nd.id, b));
    for (int c = 0; c < ch; ++c) {
      const float m = nd.mean[c], s = nd.stdev[c];
      for (size_t i = 0; i < hw; ++i) dst[i * ch + c] = (src[c * hw + i] - m) / s;
    }
  });
}

}  // namespace

// ------------------------------------------------------------ flatten

NodeRecord write_node(const FlattenNode& n) {
  NodeRecord rec;
  json& j = rec.node;
  j["name"] = n.name;
  j["op"] = kFlattenOp.name;
  j["inputs"] = json::array({n.input});
  j["attrs"] = json::object();
  j["tensors"] = json::object();
  return rec;
}

namespace {

void parse_flatten(NodeParser& p) {
  Node& nd = p.node;
  nd.out = p.input(0);
  nd.out.c = static_cast<int>(p.input(0).elements());
  nd.out.h = nd.out.w = 1;
  p.check_value(nd.out);
}

// NHWC -> PyTorch's C-major order, the element type kept.
void run_flatten(const Node& nd, const RunArgs& a) {
  const ValueInfo& x = a.graph.nodes[nd.inputs[0]].out;
  const size_t hw = static_cast<size_t>(x.h) * x.w, es = x.codes ? 1 : 4;
  a.pool.parallel_for(a.batch, [&](int b) {
    const uint8_t* s = static_cast<const uint8_t*>(a.value(nd.inputs[0], b));
    uint8_t* d = static_cast<uint8_t*>(a.value(nd.id, b));
    for (int c = 0; c < x.c; ++c)
      for (size_t i = 0; i < hw; ++i)
        std::memcpy(d + (c * hw + i) * es, s + (i * x.c + c) * es, es);
  });
}

}  // namespace

// ------------------------------------------------------------ add

NodeRecord write_node(const AddNode& n) {
  NodeRecord rec;
  json& j = rec.node;
  j["name"] = n.name;
  j["op"] = kAddOp.name;
  j["inputs"] = json::array({n.a, n.b});
  j["attrs"] = json::object();
  j["output"] = output_json(n.output);
  j["tensors"] = json::object();
  return rec;
}

namespace {

void parse_add(NodeParser& p) {
  Node& nd = p.node;
  const ValueInfo &a = p.input(0), &b = p.input(1);
  if (a.c != b.c || a.h != b.h || a.w != b.w) p.fail("add inputs have different shapes");
  nd.spec = p.output();
  nd.out = value_of(nd.spec, a.c, a.h, a.w);
}

void run_add(const Node& nd, const RunArgs& a) {
  const size_t n = static_cast<size_t>(nd.out.elements());
  a.pool.parallel_for(a.batch, [&](int b) {
    a.graph.kernels->add(n, a.input_ref(nd, 0, b), a.input_ref(nd, 1, b), a.output_ref(nd, b));
  });
}

}  // namespace

// ------------------------------------------------------------ affine

NodeRecord write_node(const AffineNode& n) {
  writer_require(n.scale.size() == n.bias.size() && !n.scale.empty(), n.name,
                 "scale and bias need one value per channel");
  NodeRecord rec;
  json& j = rec.node;
  j["name"] = n.name;
  j["op"] = kAffineOp.name;
  j["inputs"] = json::array({n.input});
  j["attrs"] = json::object();
  j["output"] = output_json(n.output);
  rec.tensors.push_back(f32_record(n.name + ".scale", n.scale));
  rec.tensors.push_back(f32_record(n.name + ".bias", n.bias));
  j["tensors"] = {{"scale", n.name + ".scale"}, {"bias", n.name + ".bias"}};
  return rec;
}

namespace {

void parse_affine(NodeParser& p) {
  Node& nd = p.node;
  const ValueInfo& x = p.input(0);
  nd.out_scale = p.f32_tensor("scale", x.c);
  nd.out_bias = p.f32_tensor("bias", x.c);
  nd.spec = p.output();
  nd.out = value_of(nd.spec, x.c, x.h, x.w);
}

void run_affine(const Node& nd, const RunArgs& a) {
  const size_t pixels = static_cast<size_t>(nd.out.h) * nd.out.w;
  a.pool.parallel_for(a.batch, [&](int b) {
    a.graph.kernels->affine(pixels, nd.out.c, a.input_ref(nd, 0, b), nd.out_scale.data(),
                            nd.out_bias.data(), a.output_ref(nd, b));
  });
}

}  // namespace

const OpDef kInputOp{Op::kInput, "input", 0, 0, parse_input, run_input};
const OpDef kFlattenOp{Op::kFlatten, "flatten", 1, 1, parse_flatten, run_flatten};
const OpDef kAddOp{Op::kAdd, "add", 2, 2, parse_add, run_add};
const OpDef kAffineOp{Op::kAffine, "affine", 1, 1, parse_affine, run_affine};

}  // namespace pactq::rt::detail
