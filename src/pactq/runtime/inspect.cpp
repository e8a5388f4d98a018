#include "pactq/runtime/inspect.h"

#include <algorithm>
#include <sstream>

#include "pactq/runtime/compiled_graph.h"
#include "pactq/runtime/ops/op_table.h"

namespace pactq::rt {

namespace {

using detail::Node;
using detail::Op;
using detail::ValueInfo;

std::string fmt_float(float v) {
  std::ostringstream s;
  s << v;
  return s.str();
}

std::string shape(const ValueInfo& v) {
  return "[" + std::to_string(v.c) + "," + std::to_string(v.h) + "," + std::to_string(v.w) + "]";
}

std::string type(const ValueInfo& v) {
  return v.codes ? "u" + std::to_string(v.bits) + "(alpha=" + fmt_float(v.alpha) +
                       ",scale=" + fmt_float(v.scale) + ")"
                 : std::string("f32");
}

void describe_conv_like(std::ostringstream& s, const Node& n) {
  const kernels::ConvGeom& g = n.geom;
  if (n.op == Op::kConv) {
    s << " k" << g.kh << "x" << g.kw << " s" << g.sh << "," << g.sw << " p" << g.ph << "," << g.pw;
    if (g.groups > 1) s << " g" << g.groups;
  }
  s << " w="
    << (n.w_codes ? "u" + std::to_string(n.wbits) + "(w_scale=" + fmt_float(n.w_scale) + ")"
                  : std::string("f32"))
    << " path=" << (n.integer_path ? "int" : "float") << " weight_bytes=" << n.weight_file_bytes;
  if (n.has_residual) {
    s << " residual(stride=" << n.res_stride << ",pad_channels=" << n.res_pad << ")";
  }
  float mn = 0, mx = 0;
  if (!n.out_scale.empty()) {
    mn = *std::min_element(n.out_scale.begin(), n.out_scale.end());
    mx = *std::max_element(n.out_scale.begin(), n.out_scale.end());
  }
  s << " out_scale=[" << fmt_float(mn) << ".." << fmt_float(mx) << "]";
}

}  // namespace

std::string describe(const Model& model) {
  const detail::CompiledGraph& m = model.graph();
  std::ostringstream s;
  s << "model: " << (model.model_name().empty() ? "?" : model.model_name()) << "  file: " << m.file
    << "  format_version: " << model.metadata("format_version")
    << "  producer: " << model.metadata("producer") << "\n";
  s << "nodes: " << m.nodes.size() << "  file bytes: " << m.file_bytes
    << "  weight bytes: " << m.weight_bytes << "  classes: " << model.classes()
    << "  output: " << m.nodes[m.output].name << "  isa: " << model.isa()
    << "  buffer bytes/image: " << m.plan.total << "\n";
  for (size_t i = 0; i < m.nodes.size(); ++i) {
    const Node& n = m.nodes[i];
    s << "  " << i << " " << n.name << " " << detail::op_def(n.op).name << " (";
    for (size_t j = 0; j < n.inputs.size(); ++j) {
      const Node& src = m.nodes[n.inputs[j]];
      s << (j ? ", " : "") << src.name << " " << shape(src.out) << " " << type(src.out);
    }
    s << ") -> " << shape(n.out) << " " << type(n.out);
    if (!n.out.codes && n.spec.act != FloatAct::kNone) {
      s << (n.spec.act == FloatAct::kRelu ? " relu" : " clip(" + fmt_float(n.spec.alpha) + ")");
    }
    if (n.op == Op::kConv || n.op == Op::kLinear) {
      describe_conv_like(s, n);
    } else if (n.op == Op::kMaxPool || n.op == Op::kAvgPool) {
      s << " k" << n.pool.kh << "x" << n.pool.kw << " s" << n.pool.sh << "," << n.pool.sw << " p"
        << n.pool.ph << "," << n.pool.pw;
    }
    s << "\n";
  }
  return s.str();
}

}  // namespace pactq::rt
