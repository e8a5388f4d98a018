#include "pactq/runtime/ops/op_table.h"

#include <cstring>
#include <limits>

#include "pactq/runtime/quant_format.h"

namespace pactq::rt::detail {

namespace {

// In Op order.
const OpDef* const kTable[] = {&kInputOp,         &kConv2dOp,  &kLinearOp, &kMaxPoolOp, &kAvgPoolOp,
                               &kGlobalAvgPoolOp, &kFlattenOp, &kAddOp,    &kAffineOp};

}  // namespace

const OpDef& op_def(Op op) {
  return *kTable[static_cast<int>(op)];
}

const OpDef* find_op(const std::string& name) {
  for (const OpDef* d : kTable)
    if (name == d->name) return d;
  return nullptr;
}

std::string known_op_names() {
  std::string s;
  for (const OpDef* d : kTable) s += (s.empty() ? "" : ", ") + std::string(d->name);
  return s;
}

// ------------------------------------------------------------ parsing

void NodeParser::check_value(const ValueInfo& v) const {
  if (v.c < 1 || v.h < 1 || v.w < 1 || v.c > kMaxDim || v.h > kMaxDim || v.w > kMaxDim ||
      v.elements() > kMaxElements) {
    fail("output shape [" + std::to_string(v.c) + ", " + std::to_string(v.h) + ", " +
         std::to_string(v.w) + "] invalid or too large");
  }
}

OutputSpec NodeParser::output() const {
  const json& o = member(node_json, "output");
  if (!o.is_object()) fail("'output' must be an object");
  const std::string type = get_string(o, "type");
  OutputSpec s;
  if (type == "codes") {
    s.codes = true;
    s.bits =
        static_cast<int>(as_int(member(o, "bits"), "output bits", std::numeric_limits<int>::min(),
                                std::numeric_limits<int>::max()));
    if (!format::valid_bits(s.bits)) {
      fail("unsupported activation bits " + std::to_string(s.bits) + " (expected 1..8)");
    }
    s.alpha = get_float(o, "alpha");
    if (!(s.alpha > 0.f)) fail("output alpha must be > 0");
  } else if (type == "float") {
    std::string act = "none";
    if (o.contains("act")) act = get_string(o, "act");
    if (act == "none") {
      s.act = FloatAct::kNone;
    } else if (act == "relu") {
      s.act = FloatAct::kRelu;
    } else if (act == "clip") {
      s.act = FloatAct::kClip;
      s.alpha = get_float(o, "alpha");
      if (!(s.alpha > 0.f)) fail("clip alpha must be > 0");
    } else {
      fail("unknown float activation '" + act + "'");
    }
  } else {
    fail("unknown output type '" + type + "' (expected float or codes)");
  }
  return s;
}

json output_json(const OutputSpec& o) {
  json j;
  if (o.codes) {
    j["type"] = "codes";
    j["bits"] = o.bits;
    j["alpha"] = o.alpha;
  } else {
    j["type"] = "float";
    j["act"] = o.act == FloatAct::kRelu ? "relu" : o.act == FloatAct::kClip ? "clip" : "none";
    if (o.act == FloatAct::kClip) j["alpha"] = o.alpha;
  }
  return j;
}

const TensorInfo& NodeParser::tensor(const char* role, std::string* name) const {
  *name = get_string(tensors, role);
  auto it = infos.find(*name);
  if (it == infos.end()) fail(std::string(role) + " tensor '" + *name + "' not in file");
  return it->second;
}

std::vector<float> NodeParser::f32_tensor(const char* role, int64_t count) const {
  std::string tname;
  const TensorInfo& ti = tensor(role, &tname);
  if (ti.dtype != "F32") fail("tensor '" + tname + "' must be F32, is " + ti.dtype);
  if (ti.numel != count) {
    fail("tensor '" + tname + "' has " + std::to_string(ti.numel) + " elements, node needs " +
         std::to_string(count));
  }
  std::vector<float> v(static_cast<size_t>(count));
  if (count) std::memcpy(v.data(), blob + ti.begin, static_cast<size_t>(count) * 4);
  weight_bytes += static_cast<size_t>(ti.end - ti.begin);
  return v;
}

ValueInfo value_of(const OutputSpec& s, int c, int h, int w) {
  ValueInfo v;
  v.c = c;
  v.h = h;
  v.w = w;
  v.codes = s.codes;
  if (s.codes) {
    v.bits = s.bits;
    v.alpha = s.alpha;
    v.scale = format::code_scale(s.alpha, s.bits);
  }
  return v;
}

// ------------------------------------------------------------ running

kernels::TensorRef RunArgs::input_ref(const Node& nd, int which, int image) const {
  const int src = nd.inputs[which];
  kernels::TensorRef t;
  t.data = value(src, image);
  t.codes = graph.nodes[src].out.codes;
  t.scale = graph.nodes[src].out.scale;
  return t;
}

kernels::OutputRef RunArgs::output_ref(const Node& nd, int image) const {
  kernels::OutputRef o;
  o.data = value(nd.id, image);
  o.codes = nd.spec.codes;
  if (o.codes) {
    o.n_out = format::max_code(nd.spec.bits);
    o.inv = format::requant_inverse(nd.spec.alpha, nd.spec.bits);
  }
  o.act = nd.spec.act;
  o.alpha = nd.spec.alpha;
  return o;
}

// ------------------------------------------------------------ writing

TensorRecord f32_record(const std::string& name, const std::vector<float>& values) {
  TensorRecord t{name, "F32", {static_cast<int64_t>(values.size())}, {}};
  t.bytes.resize(values.size() * sizeof(float));
  if (!values.empty()) std::memcpy(t.bytes.data(), values.data(), t.bytes.size());
  return t;
}

void writer_require(bool ok, const std::string& node, const std::string& what) {
  if (!ok) throw FormatError("ModelWriter: node '" + node + "': " + what);
}

}  // namespace pactq::rt::detail
