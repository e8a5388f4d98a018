// max_pool2d, avg_pool2d and global_avg_pool: the writer's form, the loader's
// validation and the run, in one place.
#include "pactq/runtime/ops/op_table.h"

namespace pactq::rt::detail {

namespace k = kernels;

NodeRecord write_node(const PoolNode& n) {
  NodeRecord rec;
  json& j = rec.node;
  j["name"] = n.name;
  j["op"] = n.max ? kMaxPoolOp.name : kAvgPoolOp.name;
  j["inputs"] = json::array({n.input});
  j["attrs"] = {{"kernel", {n.kernel_h, n.kernel_w}},
                {"stride", {n.stride_h, n.stride_w}},
                {"padding", {n.pad_h, n.pad_w}}};
  if (!n.max) j["output"] = output_json(n.output);  // max pool keeps its input's type
  j["tensors"] = json::object();
  return rec;
}

NodeRecord write_node(const GlobalAvgPoolNode& n) {
  NodeRecord rec;
  json& j = rec.node;
  j["name"] = n.name;
  j["op"] = kGlobalAvgPoolOp.name;
  j["inputs"] = json::array({n.input});
  j["attrs"] = json::object();
  j["output"] = output_json(n.output);
  j["tensors"] = json::object();
  return rec;
}

namespace {

void parse_pool(NodeParser& p) {
  Node& nd = p.node;
  const ValueInfo& x = p.input(0);
  k::PoolGeom& g = nd.pool;
  p.get_pair(p.attrs, "kernel", 1, kMaxKernel, &g.kh, &g.kw);
  p.get_pair(p.attrs, "stride", 1, kMaxKernel, &g.sh, &g.sw);
  p.get_pair(p.attrs, "padding", 0, kMaxKernel, &g.ph, &g.pw);
  if (2 * g.ph > g.kh || 2 * g.pw > g.kw) p.fail("padding must be at most half the kernel");
  if (x.h + 2 * g.ph < g.kh || x.w + 2 * g.pw < g.kw) p.fail("kernel larger than input");
  g.in_h = x.h;
  g.in_w = x.w;
  g.c = x.c;
  g.out_h = (x.h + 2 * g.ph - g.kh) / g.sh + 1;
  g.out_w = (x.w + 2 * g.pw - g.kw) / g.sw + 1;
  if (nd.op == Op::kMaxPool) {
    nd.out = x;
    nd.out.h = g.out_h;
    nd.out.w = g.out_w;
  } else {
    nd.spec = p.output();
    nd.out = value_of(nd.spec, x.c, g.out_h, g.out_w);
  }
  p.check_value(nd.out);
}

void run_max_pool(const Node& nd, const RunArgs& a) {
  const int rows = nd.pool.out_h;
  const bool codes = nd.out.codes;
  a.pool.parallel_for(a.batch * rows, [&](int item) {
    const int b = item / rows, oh = item % rows;
    a.graph.kernels->max_pool(nd.pool, a.value(nd.inputs[0], b), codes, a.value(nd.id, b), oh,
                              oh + 1);
  });
}

void run_avg_pool(const Node& nd, const RunArgs& a) {
  const int rows = nd.pool.out_h;
  a.pool.parallel_for(a.batch * rows, [&](int item) {
    const int b = item / rows, oh = item % rows;
    k::avg_pool_rows(nd.pool, a.input_ref(nd, 0, b), a.output_ref(nd, b), oh, oh + 1);
  });
}

void parse_global_avg_pool(NodeParser& p) {
  Node& nd = p.node;
  nd.spec = p.output();
  nd.out = value_of(nd.spec, p.input(0).c, 1, 1);
}

void run_global_avg_pool(const Node& nd, const RunArgs& a) {
  const ValueInfo& x = a.graph.nodes[nd.inputs[0]].out;
  a.pool.parallel_for(a.batch, [&](int b) {
    k::global_avg_pool(x.h, x.w, x.c, a.input_ref(nd, 0, b), a.output_ref(nd, b));
  });
}

}  // namespace

const OpDef kMaxPoolOp{Op::kMaxPool, "max_pool2d", 1, 1, parse_pool, run_max_pool};
const OpDef kAvgPoolOp{Op::kAvgPool, "avg_pool2d", 1, 1, parse_pool, run_avg_pool};
const OpDef kGlobalAvgPoolOp{Op::kGap, "global_avg_pool",     1,
                             1,        parse_global_avg_pool, run_global_avg_pool};

}  // namespace pactq::rt::detail
