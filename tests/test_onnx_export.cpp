// ONNX export (docs/onnx.md): both formats export every zoo model and pass
// the ONNX checker; the QCDQ file holds the .pqm's weight codes and scales
// exactly; QONNX nodes carry their bit widths as inputs; ONNX Runtime
// (tools/ort, installed by scripts/setup) runs the QCDQ file and the QONNX
// file (its quantizers rewritten into standard ops from the QONNX
// definition) and agrees with the fake-quantized model and the deployed
// .pqm on Fashion-MNIST (lenet5) and CIFAR-10 (resnet20) at W4/A4 and W2/A2.
//
// Tolerance against the .pqm (docs/onnx.md): ORT computes each layer in
// float32 in its own summation order, so a code can differ by one where its
// pre-activation lies within rounding error of a half step; everything else
// is the same arithmetic. Per image and class, with g the output layer's
// input (W, scale, bias: its float weights and folding, F its fan-in,
// u = 2^-24):
//   |logit_ort - logit_pqm| <= |scale| sum_j |W_j| |g_ort_j - g_pqm_j|
//                              + (2F + 8) u (|scale| sum_j |W_j| |g_j| + |bias|)
// i.e. the exact effect of the code differences reaching the output layer
// plus float32 rounding of that layer computed in two orders.
#include <ATen/ATen.h>
#include <gtest/gtest.h>
#include <torch/nn/modules/batchnorm.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <string>
#include <tuple>
#include <vector>

#include "export_test_util.h"
#include "pactq/common/format.h"
#include "pactq/export/checkpoint_export.h"
#include "pactq/export/export_plan.h"
#include "pactq/export/onnx/onnx_export.h"
#include "pactq/export/plan_builder.h"
#include "pactq/models/registry.h"
#include "pactq/nn/pact_relu.h"
#include "pactq/nn/precision_policy.h"
#include "pactq/runtime/model.h"
#include "pactq/runtime/quant_format.h"
#include "pactq/train/checkpoint.h"
#include "pactq/train/data_setup.h"
#include "pactq/train/trainer.h"
#include "test_env.h"

namespace fs = std::filesystem;
namespace ox = pactq::export_::onnx_export;
using namespace pactq;
using test::calibrate;
using test::temp_dir;

namespace {

using pactq::test::kCifar;
using pactq::test::kFashion;
using pactq::test::kPretrained;
const std::string kOrtDir = std::string(PACTQ_SOURCE_DIR) + "/tools/ort";
constexpr double kU = 5.9604644775390625e-08;  // 2^-24, float32 unit roundoff

std::string read_text(const std::string& path) {
  std::ifstream f(path);
  return std::string((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
}

std::vector<char> read_bytes(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return std::vector<char>((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
}

// Why ONNX Runtime cannot run here ("" when it can).
std::string ort_missing() {
  if (std::system("node --version > /dev/null 2>&1") != 0) return "node is not on PATH";
  if (!fs::exists(kOrtDir + "/node_modules/onnxruntime-node/package.json")) {
    return kOrtDir + "/node_modules/onnxruntime-node is missing";
  }
  return "";
}

// The zoo tests check export, checker and constants without ONNX Runtime,
// and say so as a skip rather than pass silently without the numbers.
#define SKIP_NUMERICS_WITHOUT_ORT()                                                      \
  do {                                                                                   \
    const std::string why = ort_missing();                                               \
    if (!why.empty())                                                                    \
      PACTQ_SKIP_MISSING("export, checker and constants checked; ONNX Runtime numerics " \
                         << "skipped: not installed (" << why << ")");                   \
  } while (0)

#define SKIP_WITHOUT_ORT()                                                              \
  do {                                                                                  \
    const std::string why = ort_missing();                                              \
    if (!why.empty()) PACTQ_SKIP_MISSING("ONNX Runtime not installed (" << why << ")"); \
  } while (0)

// ---------------------------------------------------------------- ONNX Runtime

// Adds graph outputs (type only) so ONNX Runtime returns these tensors too.
void add_outputs(onnx::ModelProto& m, const std::vector<std::pair<std::string, int>>& outputs) {
  for (const auto& [name, type] : outputs) {
    onnx::ValueInfoProto* o = m.mutable_graph()->add_output();
    o->set_name(name);
    o->mutable_type()->mutable_tensor_type()->set_elem_type(type);
  }
}

void save(const onnx::ModelProto& m, const std::string& path) {
  std::string bytes;
  ASSERT_TRUE(m.SerializeToString(&bytes));
  std::ofstream(path, std::ios::binary) << bytes;
}

struct OrtRun {
  bool ok = false;
  at::Tensor logits;                                 // [N, K]
  std::map<std::string, std::vector<char>> outputs;  // raw bytes, batches concatenated
};

// node tools/ort/run_ort.js on pixels [N, C, H, W] in [0, 1].
OrtRun run_ort(const std::string& onnx, const at::Tensor& pixels, const std::string& dir,
               const std::vector<std::string>& extra = {}) {
  OrtRun r;
  const at::Tensor px = pixels.contiguous();
  const std::string raw = dir + "/pixels.f32", out = dir + "/logits.f32", log = dir + "/ort.log";
  std::ofstream(raw, std::ios::binary)
      .write(reinterpret_cast<const char*>(px.data_ptr<float>()), 4 * px.numel());
  std::string names;
  for (const auto& e : extra) names += (names.empty() ? "" : ",") + e;
  const std::string cmd = pactq::format(
      "node {}/run_ort.js {} --raw {} --shape {},{},{},{} --batch 250 --threads 2 --out {} "
      "--out-dir {}{} > {} 2>&1",
      kOrtDir, onnx, raw, px.size(0), px.size(1), px.size(2), px.size(3), out, dir,
      names.empty() ? "" : " --outputs " + names, log);
  if (std::system(cmd.c_str()) != 0) {
    ADD_FAILURE() << cmd << "\n" << read_text(log);
    return r;
  }
  const std::vector<char> b = read_bytes(out);
  const int64_t n = px.size(0);
  at::Tensor l = at::empty({static_cast<int64_t>(b.size() / 4)}, at::kFloat);
  std::memcpy(l.data_ptr<float>(), b.data(), b.size());
  r.logits = l.reshape({n, -1});
  for (const auto& e : extra) r.outputs[e] = read_bytes(dir + "/" + e + ".bin");
  r.ok = true;
  return r;
}

// The .pqm's values for every image, batch by batch (a trace keeps every node).
struct PqmRun {
  at::Tensor logits;                         // [N, K]
  std::map<std::string, at::Tensor> codes;   // node -> uint8 [N, C, H, W]
  std::map<std::string, at::Tensor> values;  // node -> float [N, ...]
};

PqmRun run_pqm(rt::Model& m, const at::Tensor& pixels, const std::vector<std::string>& code_nodes,
               const std::vector<std::string>& value_nodes) {
  PqmRun r;
  const at::Tensor px = pixels.contiguous();
  const int64_t n = px.size(0), per = px[0].numel(), batch = 250;
  std::vector<at::Tensor> logits;
  std::map<std::string, std::vector<at::Tensor>> codes, values;
  for (int64_t s = 0; s < n; s += batch) {
    const int b = static_cast<int>(std::min(batch, n - s));
    const rt::Trace t = m.trace(px.data_ptr<float>() + s * per, b);
    const rt::NodeOutput out = t.output(t.size() - 1);
    logits.push_back(at::tensor(out.values).reshape({b, -1}));
    for (const auto& c : code_nodes) {
      const rt::NodeOutput o = t.output(c);
      codes[c].push_back(at::from_blob(const_cast<uint8_t*>(o.code_values.data()),
                                       {b, o.channels, o.height, o.width}, at::kByte)
                             .clone());
    }
    for (const auto& v : value_nodes)
      values[v].push_back(at::tensor(t.output(v).values).reshape({b, -1}));
  }
  r.logits = at::cat(logits);
  for (auto& [k, v] : codes) r.codes[k] = at::cat(v);
  for (auto& [k, v] : values) r.values[k] = at::cat(v);
  return r;
}

// ---------------------------------------------------------------- agreement

struct Agreement {
  int64_t images = 0;
  int64_t pqm_agree = 0;              // same prediction as the .pqm
  double max_logit_diff = 0;          // max |logit_ort - logit_pqm|
  double max_bound = 0;               // the largest per-logit tolerance that applied
  double worst_ratio = 0;             // max |diff| / tolerance (must stay <= 1)
  int64_t images_with_code_diff = 0;  // output layer's input differs beyond float rounding
  int64_t images_rounding_only = 0;   // every logit within the rounding term alone
  double max_input_diff_steps = 0;    // max |g_ort - g_pqm| in code steps (<= 1)
};

// The output layer of the plan as the .pqm computes it:
// logit = scale * sum_j W_j (g_j / input_step) + bias, with W the float
// weights (float path) or the integers 2q - n and g / input_step the input
// codes (integer path: codes weights and a CODES input).
struct OutputLayer {
  std::string input;
  at::Tensor weight;       // [K, F], double
  at::Tensor scale, bias;  // [K], double
  double input_step = 1;
};

OutputLayer output_layer(const export_::ExportPlan& plan) {
  const auto& last = std::get<rt::LinearNode>(plan.steps().back().node);
  OutputLayer o;
  o.input = last.input;
  export_::ValueType in;
  for (const auto& s : plan.steps()) {
    if (s.name == last.input) in = s.out;
  }
  const rt::WeightData& w = last.weight;
  std::vector<double> values(w.f32.begin(), w.f32.end());
  if (!w.codes.empty()) {
    const int n = rt::format::max_code(w.bits);
    values.clear();
    for (uint8_t q : w.codes) {
      values.push_back(in.codes ? 2.0 * q - n : rt::format::weight_value(q, w.bits, w.scale));
    }
    if (in.codes) o.input_step = rt::format::code_scale(in.alpha, in.bits);
  }
  o.weight = at::tensor(values).reshape({last.out_features, last.in_features});
  o.scale = at::tensor(std::vector<double>(last.out_scale.begin(), last.out_scale.end()));
  o.bias = at::tensor(std::vector<double>(last.out_bias.begin(), last.out_bias.end()));
  return o;
}

// The code step of the activation that reaches `name` through value-keeping
// nodes (pools, flatten): g there is a mean of codes times that step. 0 when
// no quantized activation feeds it.
double code_step_feeding(const export_::ExportPlan& plan, std::string name) {
  for (int hops = 0; hops < 8; ++hops) {
    const export_::ExportPlan::Step* found = nullptr;
    for (const auto& s : plan.steps()) {
      if (s.name == name) found = &s;
    }
    if (found == nullptr) return 0;
    if (found->out.codes) return rt::format::code_scale(found->out.alpha, found->out.bits);
    const bool passes_codes_on = std::holds_alternative<rt::GlobalAvgPoolNode>(found->node) ||
                                 std::holds_alternative<rt::PoolNode>(found->node) ||
                                 std::holds_alternative<rt::FlattenNode>(found->node);
    if (!passes_codes_on || found->inputs.empty()) return 0;
    name = found->inputs.front();
  }
  return 0;
}

// Checks ORT's logits against the .pqm's within the header's tolerance. The
// tolerance comes from the .pqm's own values: ORT's output-layer input g_ort
// (the ORT run's extra output named after that node) may differ from the
// .pqm's only by code differences averaged over a pool, at most one code step
// per element; checked first, so a wrong op feeding the output layer (a pool
// that sums, say) fails here instead of widening the tolerance.
Agreement check_logits(const export_::ExportPlan& plan, const OrtRun& ort, const PqmRun& pqm) {
  Agreement a;
  const OutputLayer L = output_layer(plan);
  const int64_t n = ort.logits.size(0);
  a.images = n;
  const std::vector<char>& gb = ort.outputs.at(L.input);
  at::Tensor g_ort = at::empty({static_cast<int64_t>(gb.size() / 4)}, at::kFloat);
  std::memcpy(g_ort.data_ptr<float>(), gb.data(), gb.size());
  g_ort = g_ort.reshape({n, -1}).to(at::kDouble) / L.input_step;
  const at::Tensor g_pqm = pqm.values.at(L.input).to(at::kDouble) / L.input_step;
  const at::Tensor w = L.weight.abs(), s = L.scale.abs(), b = L.bias.abs();
  const double f = static_cast<double>(L.weight.size(1));
  const at::Tensor dg = (g_ort - g_pqm).abs();
  // One code step in g's units (codes: 1), or float rounding of g where no
  // quantized activation feeds the layer.
  const double feeding = code_step_feeding(plan, L.input);
  const double step = feeding > 0 ? feeding / L.input_step : 0;
  // Float rounding: two float32 evaluations of the network so far, relative
  // to the image's largest input of the layer.
  const at::Tensor allowed = step + 1e-4 * (g_pqm.abs().amax(1, true) + step);
  EXPECT_TRUE(dg.le(allowed).all().item<bool>())
      << "ORT's input of the output layer (" << L.input << ") differs from the .pqm's by "
      << dg.max().item<double>() << ", more than one code step (" << step << ")";
  a.max_input_diff_steps = step > 0 ? dg.max().item<double>() / step : dg.max().item<double>();
  const at::Tensor g = g_pqm.abs() + allowed;
  const at::Tensor rounding = (2 * f + 8) * kU * (s * at::matmul(g, w.t()) + b);
  const at::Tensor bound = s * at::matmul(dg, w.t()) + rounding;
  const at::Tensor diff = (ort.logits.to(at::kDouble) - pqm.logits.to(at::kDouble)).abs();
  a.max_logit_diff = diff.max().item<double>();
  a.max_bound = bound.max().item<double>();
  a.worst_ratio = (diff / bound).max().item<double>();
  // A code difference moves g by at least a code step over the pooled
  // positions; float rounding of the pooling by ulps of g.
  a.images_with_code_diff = dg.gt(1e-5 * (g.amax(1, true) + 1e-30)).any(1).sum().item<int64_t>();
  a.images_rounding_only = diff.le(rounding).all(1).sum().item<int64_t>();
  a.pqm_agree = ort.logits.argmax(1).eq(pqm.logits.argmax(1)).sum().item<int64_t>();
  EXPECT_LE(a.worst_ratio, 1.0) << "ORT logits differ from the .pqm's by " << a.max_logit_diff
                                << " beyond the derived tolerance";
  return a;
}

// Names of the plan's conv/linear/affine nodes with CODES output (QCDQ has
// "<node>.codes" for each), in order.
std::vector<std::string> code_nodes(const export_::ExportPlan& plan) {
  std::vector<std::string> out;
  for (const auto& s : plan.steps()) {
    const bool layer = std::holds_alternative<rt::ConvNode>(s.node) ||
                       std::holds_alternative<rt::LinearNode>(s.node) ||
                       std::holds_alternative<rt::AffineNode>(s.node);
    if (layer && s.out.codes) out.push_back(s.name);
  }
  return out;
}

// The input of a node's QuantizeLinear (its float pre-activation).
std::string quant_input(const onnx::ModelProto& m, const std::string& node) {
  for (const auto& n : m.graph().node()) {
    if (n.op_type() == "QuantizeLinear" && n.output(0) == node + ".quant") return n.input(0);
  }
  ADD_FAILURE() << "no QuantizeLinear for " << node;
  return "";
}

float float_initializer(const onnx::ModelProto& m, const std::string& name) {
  for (const auto& t : m.graph().initializer()) {
    if (t.name() == name) {
      EXPECT_EQ(t.data_type(), onnx::TensorProto::FLOAT) << name;
      float v = 0;
      std::memcpy(&v, t.raw_data().data(), 4);
      return v;
    }
  }
  ADD_FAILURE() << "no initializer " << name;
  return 0;
}

const onnx::TensorProto* initializer(const onnx::ModelProto& m, const std::string& name) {
  for (const auto& t : m.graph().initializer()) {
    if (t.name() == name) return &t;
  }
  return nullptr;
}

// The extra outputs a probed ORT run returns: the output layer's input, and
// for every quantized node its pre-activation and its value "<node>" (QCDQ:
// DequantizeLinear's output; QONNX: the quantizer's), codes times the step.
std::vector<std::string> probe_names(const onnx::ModelProto& qcdq, const export_::ExportPlan& plan,
                                     const std::string& output_input) {
  std::vector<std::string> names{output_input};
  for (const auto& node : code_nodes(plan)) {
    names.push_back(quant_input(qcdq, node));
    names.push_back(node);
  }
  return names;
}

// `model` with those outputs, run by ORT on pixels.
OrtRun run_probed(onnx::ModelProto model, const std::vector<std::string>& names,
                  const at::Tensor& pixels, const std::string& dir) {
  std::vector<std::pair<std::string, int>> outs;
  for (const auto& n : names) outs.push_back({n, onnx::TensorProto::FLOAT});
  add_outputs(model, outs);
  save(model, dir + "/probed.onnx");
  return run_ort(dir + "/probed.onnx", pixels, dir, names);
}

// ORT's activation codes (value / step) vs the .pqm's, node by node. The
// first node (in order) whose codes differ reads identical inputs on both
// sides, so each of its differences must be one step, at a rounding tie: a
// wrong constant or op anywhere shows there as a difference away from a tie.
struct CodeCheck {
  int64_t compared = 0, matched = 0;
  int max_step = 0;
  std::string first_node = "none";
  int64_t first_differ = 0, first_compared = 0;
  std::string report;  // node:differing/compared for each node that differs
  double match_percent() const { return compared ? 100.0 * matched / compared : 100.0; }
};

CodeCheck check_codes(const onnx::ModelProto& qcdq, const export_::ExportPlan& plan,
                      const OrtRun& ort, const PqmRun& p) {
  CodeCheck c;
  auto floats = [&](const std::string& name) {
    const std::vector<char>& b = ort.outputs.at(name);
    at::Tensor t = at::empty({static_cast<int64_t>(b.size() / 4)}, at::kFloat);
    std::memcpy(t.data_ptr<float>(), b.data(), b.size());
    return t.to(at::kDouble);
  };
  for (const auto& node : code_nodes(plan)) {
    const double step = float_initializer(qcdq, node + ".act_scale");
    const at::Tensor mine = p.codes.at(node).reshape({-1}).to(at::kDouble);
    const at::Tensor theirs = (floats(node) / step).round();
    EXPECT_EQ(theirs.numel(), mine.numel()) << node;
    if (theirs.numel() != mine.numel()) return c;
    const at::Tensor d = (theirs - mine).abs();
    const int64_t differ = d.gt(0).sum().item<int64_t>();
    c.compared += mine.numel();
    c.matched += mine.numel() - differ;
    c.max_step = std::max(c.max_step, static_cast<int>(d.max().item<double>()));
    if (differ == 0) continue;
    c.report += pactq::format(" {}:{}/{}", node, differ, mine.numel());
    if (c.first_node != "none") continue;
    c.first_node = node;
    c.first_differ = differ;
    c.first_compared = mine.numel();
    EXPECT_LE(d.max().item<double>(), 1.0) << node << ": the first node with a difference";
    const at::Tensor t = floats(quant_input(qcdq, node)) / step;
    const at::Tensor dist = ((t - t.floor()) - 0.5).abs().masked_select(d.gt(0));
    // Two float32 evaluations of one layer differ by a few ulps of its
    // terms: far below 1e-3 of a step.
    EXPECT_LT(dist.max().item<double>(), 1e-3)
        << node << ": a code differs away from a rounding tie (first node with a difference)";
  }
  return c;
}

// Full-precision layers have no codes to compare: every conv / linear /
// affine value before the output layer, ORT's against the .pqm's (float32 in
// two summation orders: within 1e-4 of the node's largest magnitude), so an
// error in any layer shows, not only in the final Gemm. Returns the largest
// relative difference, or -1 when ORT did not run.
double check_float_nodes(const export_::ExportPlan& plan, const onnx::ModelProto& qcdq,
                         rt::Model& pqm, const at::Tensor& pixels, const std::string& dir) {
  std::vector<std::string> names;
  for (size_t i = 0; i + 1 < plan.steps().size(); ++i) {
    const auto& s = plan.steps()[i];
    const bool layer = std::holds_alternative<rt::ConvNode>(s.node) ||
                       std::holds_alternative<rt::LinearNode>(s.node) ||
                       std::holds_alternative<rt::AffineNode>(s.node);
    if (layer && !s.out.codes) names.push_back(s.name);
  }
  EXPECT_FALSE(names.empty()) << "a full-precision model without float layers";
  const PqmRun p = run_pqm(pqm, pixels, {}, names);
  const OrtRun o = run_probed(qcdq, names, pixels, dir);
  if (!o.ok) return -1;
  double worst = 0;
  for (const auto& name : names) {
    const std::vector<char>& b = o.outputs.at(name);
    at::Tensor theirs = at::empty({static_cast<int64_t>(b.size() / 4)}, at::kFloat);
    std::memcpy(theirs.data_ptr<float>(), b.data(), b.size());
    const at::Tensor mine = p.values.at(name).reshape({-1});
    EXPECT_EQ(theirs.numel(), mine.numel()) << name;
    if (theirs.numel() != mine.numel()) continue;
    const double scale = mine.abs().max().item<double>() + 1e-30;
    const double rel = (theirs - mine).abs().max().item<double>() / scale;
    EXPECT_LE(rel, 1e-4) << name << ": ORT's value differs from the .pqm's by " << rel
                         << " of its largest magnitude";
    worst = std::max(worst, rel);
  }
  return worst;
}

// ---------------------------------------------------------------- QONNX -> standard ONNX

int64_t int_attr(const onnx::NodeProto& n, const std::string& name, int64_t dflt) {
  for (const auto& a : n.attribute()) {
    if (a.name() == name) return a.i();
  }
  return dflt;
}

// Rewrites every QONNX quantizer into standard ops, from the QONNX
// definition (qonnx docs, IntQuant / BipolarQuant v1):
//   IntQuant(x, s, z, k): q = round(clip(x / s + z, min_int, max_int)) (half to even), y = (q - z)
//   * s BipolarQuant(x, s):   y = (x >= 0 ? 1 : -1) * s
// with min/max from signed/narrow/k. Written independently of the exporter,
// so ONNX Runtime checks the QONNX file's numbers.
onnx::ModelProto qonnx_to_standard(const onnx::ModelProto& in) {
  onnx::ModelProto m = in;
  onnx::GraphProto* g = m.mutable_graph();
  std::vector<onnx::NodeProto> nodes(g->node().begin(), g->node().end());
  g->clear_node();
  auto constant = [&](const std::string& name, float v) {
    if (initializer(m, name)) return name;
    onnx::TensorProto* t = g->add_initializer();
    t->set_name(name);
    t->set_data_type(onnx::TensorProto::FLOAT);
    t->set_raw_data(std::string(reinterpret_cast<const char*>(&v), 4));
    return name;
  };
  auto add = [&](const std::string& op, std::vector<std::string> inputs, const std::string& out) {
    onnx::NodeProto* n = g->add_node();
    n->set_op_type(op);
    for (const auto& i : inputs) n->add_input(i);
    n->add_output(out);
  };
  for (const auto& n : nodes) {
    if (n.domain() != ox::kQonnxDomain) {
      *g->add_node() = n;
      continue;
    }
    const std::string& x = n.input(0);
    const std::string y = n.output(0);
    if (n.op_type() == "BipolarQuant") {
      add("GreaterOrEqual", {x, constant("qonnx_zero", 0.f)}, y + ".q_nonneg");
      add("Where", {y + ".q_nonneg", constant("qonnx_one", 1.f), constant("qonnx_minus_one", -1.f)},
          y + ".q_sign");
      add("Mul", {y + ".q_sign", n.input(1)}, y);
      continue;
    }
    EXPECT_TRUE(n.op_type() == "IntQuant" || n.op_type() == "Quant") << n.op_type();
    const int k = static_cast<int>(float_initializer(m, n.input(3)));
    const bool is_signed = int_attr(n, "signed", 1) != 0, narrow = int_attr(n, "narrow", 0) != 0;
    const double lo = is_signed ? -std::ldexp(1.0, k - 1) + (narrow ? 1 : 0) : 0.0;
    const double hi =
        is_signed ? std::ldexp(1.0, k - 1) - 1 : std::ldexp(1.0, k) - 1 - (narrow ? 1 : 0);
    add("Div", {x, n.input(1)}, y + ".q_div");
    add("Add", {y + ".q_div", n.input(2)}, y + ".q_add");
    add("Clip",
        {y + ".q_add", constant(pactq::format("qonnx_min_{}", lo), static_cast<float>(lo)),
         constant(pactq::format("qonnx_max_{}", hi), static_cast<float>(hi))},
        y + ".q_clip");
    add("Round", {y + ".q_clip"}, y + ".q_round");
    add("Sub", {y + ".q_round", n.input(2)}, y + ".q_sub");
    add("Mul", {y + ".q_sub", n.input(1)}, y);
  }
  auto* ops = m.mutable_opset_import();
  for (int i = ops->size() - 1; i >= 0; --i) {
    if (ops->Get(i).domain() == ox::kQonnxDomain) ops->DeleteSubrange(i, 1);
  }
  return m;
}

// ---------------------------------------------------------------- structure

std::map<std::string, int> op_counts(const onnx::ModelProto& m) {
  std::map<std::string, int> c;
  for (const auto& n : m.graph().node()) ++c[n.op_type()];
  return c;
}

// Every weight layer with codes and every CODES activation is in the file
// with the .pqm's numbers: codes 2q - n, w_scale / n, alpha / n.
void expect_pqm_constants(const export_::ExportPlan& plan, const onnx::ModelProto& qcdq) {
  int weights = 0, acts = 0;
  for (const auto& s : plan.steps()) {
    const rt::WeightData* w = nullptr;
    if (const auto* c = std::get_if<rt::ConvNode>(&s.node)) w = &c->weight;
    if (const auto* l = std::get_if<rt::LinearNode>(&s.node)) w = &l->weight;
    if (w && !w->codes.empty()) {
      ++weights;
      const int n = rt::format::max_code(w->bits);
      const onnx::TensorProto* t = initializer(qcdq, s.name + ".weight_codes");
      ASSERT_NE(t, nullptr) << s.name;
      ASSERT_EQ(t->data_type(), w->bits <= 7 ? onnx::TensorProto::INT8 : onnx::TensorProto::INT32);
      const size_t size = w->bits <= 7 ? 1 : 4;
      ASSERT_EQ(t->raw_data().size(), w->codes.size() * size) << s.name;
      for (size_t i = 0; i < w->codes.size(); ++i) {
        int32_t v = 0;
        if (size == 1) {
          v = static_cast<int8_t>(t->raw_data()[i]);
        } else {
          std::memcpy(&v, t->raw_data().data() + 4 * i, 4);
        }
        ASSERT_EQ(v, 2 * w->codes[i] - n) << s.name << " code " << i;
      }
      EXPECT_EQ(float_initializer(qcdq, s.name + ".weight_scale"), w->scale / static_cast<float>(n))
          << s.name;
    }
    if (s.out.codes && initializer(qcdq, s.name + ".act_scale")) {
      ++acts;
      EXPECT_EQ(float_initializer(qcdq, s.name + ".act_scale"),
                rt::format::code_scale(s.out.alpha, s.out.bits))
          << s.name;
      const onnx::TensorProto* hi = initializer(qcdq, pactq::format("act_max_{}b", s.out.bits));
      ASSERT_NE(hi, nullptr);
      EXPECT_EQ(static_cast<uint8_t>(hi->raw_data()[0]), rt::format::max_code(s.out.bits));
    }
  }
  EXPECT_EQ(acts, static_cast<int>(code_nodes(plan).size()));
  std::printf("    %d weight tensors and %d activations hold the .pqm's codes and scales\n",
              weights, acts);
}

// Every quantizer in the QONNX domain with its inputs and attributes; with
// the plan, each bit width is the layer's: k for an activation, k + 1 for
// DoReFa/SAWB weights (the odd grid 2q - n, zero point 0).
void expect_qonnx_structure(const onnx::ModelProto& m, const std::string& quant_op,
                            const export_::ExportPlan* plan = nullptr) {
  std::map<std::string, int> bits_of;  // quantizer output -> expected bit width
  if (plan) {
    for (const auto& s : plan->steps()) {
      if (s.out.codes) bits_of[s.name] = s.out.bits;
      const rt::WeightData* w = nullptr;
      if (const auto* c = std::get_if<rt::ConvNode>(&s.node)) w = &c->weight;
      if (const auto* l = std::get_if<rt::LinearNode>(&s.node)) w = &l->weight;
      if (w && !w->codes.empty()) bits_of[s.name + ".weight"] = w->bits == 1 ? 1 : w->bits + 1;
    }
  }
  bool domain = false;
  for (const auto& o : m.opset_import()) {
    if (o.domain() == ox::kQonnxDomain) domain = o.version() == ox::kQonnxDomainVersion;
  }
  EXPECT_TRUE(domain) << "no opset import for " << ox::kQonnxDomain;
  int quants = 0;
  for (const auto& n : m.graph().node()) {
    EXPECT_NE(n.op_type(), "QuantizeLinear");
    EXPECT_NE(n.op_type(), "DequantizeLinear");
    if (n.op_type() != quant_op && n.op_type() != "BipolarQuant") continue;
    ++quants;
    EXPECT_EQ(n.domain(), ox::kQonnxDomain) << n.name();
    if (plan) {
      EXPECT_EQ(bits_of.count(n.output(0)), 1u) << n.output(0) << ": not a quantized tensor";
    }
    if (n.op_type() == "BipolarQuant") {
      EXPECT_EQ(n.input_size(), 2) << n.name();
      if (plan) {
        EXPECT_EQ(bits_of[n.output(0)], 1) << n.name();
      }
      continue;
    }
    ASSERT_EQ(n.input_size(), 4) << n.name();  // x, scale, zero point, bit width
    const float bits = float_initializer(m, n.input(3));
    const bool weight = n.input(0).find(".weight_float") != std::string::npos;
    EXPECT_EQ(int_attr(n, "signed", -1), weight ? 1 : 0) << n.name();
    EXPECT_EQ(int_attr(n, "narrow", -1), weight ? 1 : 0) << n.name();
    EXPECT_GE(bits, weight ? 3.f : 1.f) << n.name();
    EXPECT_LE(bits, weight ? 9.f : 8.f) << n.name();
    if (plan) {
      EXPECT_EQ(bits, static_cast<float>(bits_of[n.output(0)])) << n.name();
    }
    EXPECT_EQ(float_initializer(m, n.input(2)), 0.f) << n.name();
    bool half_even = false;  // ROUND: numpy's round, half to even like pactq
    for (const auto& a : n.attribute())
      half_even |= a.name() == "rounding_mode" && a.s() == "ROUND";
    EXPECT_TRUE(half_even) << n.name();
  }
  EXPECT_GT(quants, 0);
}

struct ZooCase {
  std::string model;
  int input_size;
  nn::PrecisionPolicy policy;
};

nn::PrecisionPolicy policy(int w, int a, nn::FirstLastRule fl = nn::FirstLastRule::kFullPrecision) {
  nn::PrecisionPolicy p;
  p.wbits = w;
  p.abits = a;
  p.first_last = fl;
  return p;
}

// Exports one zoo model both ways, checks structure and constants, and (with
// ONNX Runtime) runs QCDQ and QONNX against the .pqm on random pixels.
void run_zoo_case(const ZooCase& c, const std::string& dir) {
  SCOPED_TRACE(c.model + " " + c.policy.summary());
  at::manual_seed(5);
  models::ModelOptions mo;
  mo.num_classes = 10;
  mo.input_size = c.input_size;
  auto model = models::create_model(c.model, mo);
  c.policy.apply(*model);
  const models::InputShape in = model->input_shape();
  // Some negative BN scales: the fold must keep their sign.
  calibrate(*model, at::rand({8, in.channels, in.height, in.width}) * 2 - 1, -0.5);
  const std::vector<float> mean(in.channels, 0.45f), std(in.channels, 0.25f);
  export_::ExportMetadata meta;
  meta.model = c.model;
  meta.precision = c.policy.summary();
  const export_::ExportPlan plan = export_::build_export_plan(*model, mean, std);
  const std::string pqm_path = dir + "/m.pqm", qcdq_path = dir + "/m.onnx";
  const std::string qonnx_path = dir + "/m.qonnx.onnx";
  plan.write(pqm_path, meta);
  ox::OnnxOptions o;
  const onnx::ModelProto qcdq = ox::build_onnx_model(*model, mean, std, o, meta);
  const size_t bytes = ox::write_onnx_model(qcdq, qcdq_path);
  EXPECT_EQ(bytes, fs::file_size(qcdq_path));
  o.format = ox::OnnxFormat::kQonnx;
  const onnx::ModelProto qonnx = ox::build_onnx_model(*model, mean, std, o, meta);
  ox::write_onnx_model(qonnx, qonnx_path);
  expect_pqm_constants(plan, qcdq);
  if (c.policy.wbits < 32 || c.policy.abits < 32) expect_qonnx_structure(qonnx, "IntQuant", &plan);
  const auto ops = op_counts(qcdq);
  const int codes = static_cast<int>(code_nodes(plan).size());
  EXPECT_EQ(ops.count("QuantizeLinear") ? ops.at("QuantizeLinear") : 0, codes);
  EXPECT_EQ(ox::read_onnx_model(qcdq_path).SerializeAsString(), qcdq.SerializeAsString());
  if (!ort_missing().empty()) return;

  // ORT on a few images: QCDQ and the rewritten QONNX, both against the .pqm.
  const at::Tensor pixels = at::rand({2, in.channels, in.height, in.width});
  rt::Model pqm = rt::Model::load(pqm_path);
  const OutputLayer L = output_layer(plan);
  const PqmRun p = run_pqm(pqm, pixels, code_nodes(plan), {L.input});
  const std::vector<std::string> probes = probe_names(qcdq, plan, L.input);
  const OrtRun r = run_probed(qcdq, probes, pixels, dir);
  if (!r.ok) return;
  const Agreement a = check_logits(plan, r, p);
  const CodeCheck k = check_codes(qcdq, plan, r, p);
  const OrtRun rq = run_probed(qonnx_to_standard(qonnx), probes, pixels, dir);
  if (!rq.ok) return;
  const Agreement aq = check_logits(plan, rq, p);
  const CodeCheck kq = check_codes(qcdq, plan, rq, p);
  // What is printed is asserted where it is determined. Random weights
  // amplify a tie's one-step difference layer after layer (resnet56: 10 steps
  // on a quarter of the last codes), so downstream codes are bounded only by
  // the tie rule at the first difference (check_codes); where every code is
  // equal, the logits must agree within float rounding alone, and so must
  // the predictions.
  for (const auto& [agreement, codes_check] : {std::pair{a, k}, std::pair{aq, kq}}) {
    if (codes_check.matched != codes_check.compared) continue;
    EXPECT_EQ(agreement.images_rounding_only, agreement.images) << codes_check.report;
    EXPECT_EQ(agreement.pqm_agree, agreement.images);
  }
  const double float_rel = codes == 0 ? check_float_nodes(plan, qcdq, pqm, pixels, dir) : 0.0;
  std::printf(
      "[onnx zoo] %-16s %-40s %4d nodes; ORT vs .pqm: codes %.4f%% / %.4f%% (QCDQ / QONNX; first "
      "difference %s), max |logit diff| %.3g / %.3g (tolerance up to %.3g)%s\n",
      c.model.c_str(), c.policy.summary().c_str(), qcdq.graph().node_size(), k.match_percent(),
      kq.match_percent(), k.first_node.c_str(), a.max_logit_diff, aq.max_logit_diff,
      std::max(a.max_bound, aq.max_bound),
      codes == 0 ? pactq::format("; float layers within {:.2g} relative", float_rel).c_str() : "");
}

// ---------------------------------------------------------------- trained models

struct Pixels {
  at::Tensor pixels;  // [N, C, H, W] in [0, 1]
  at::Tensor labels;
};

Pixels test_pixels(train::TrainConfig c, int64_t limit) {
  c.limit_test = limit;
  c.batch_size = 500;
  auto loader = train::make_pixel_loader(c, false);
  loader->start_epoch(0);
  std::vector<at::Tensor> x, y;
  while (auto b = loader->next()) {
    x.push_back(b->images);
    y.push_back(b->labels);
  }
  return {at::cat(x), at::cat(y)};
}

// The fake-quantized LibTorch model's logits on pixels (normalised as trained).
at::Tensor fake_quant_logits(models::QuantModel& model, const train::TrainConfig& c,
                             const at::Tensor& pixels) {
  at::NoGradGuard no_grad;
  model.eval();
  const int64_t ch = pixels.size(1);
  at::Tensor mean = at::zeros({1, ch, 1, 1}), std = at::ones({1, ch, 1, 1});
  if (!c.mean.empty()) mean = at::tensor(c.mean).reshape({1, ch, 1, 1});
  if (!c.std.empty()) std = at::tensor(c.std).reshape({1, ch, 1, 1});
  std::vector<at::Tensor> out;
  for (int64_t s = 0; s < pixels.size(0); s += 500) {
    const at::Tensor p = pixels.slice(0, s, std::min<int64_t>(s + 500, pixels.size(0)));
    out.push_back(model.forward((p - mean) / std));
  }
  return at::cat(out);
}

// Exports the checkpoint to .pqm and QCDQ (the CLI's code paths), runs ORT on
// `images` test images and checks: predictions vs the fake-quantized model
// (>= 99.5%), logits vs the .pqm (the header's tolerance, every image),
// activation codes vs the .pqm on the first `code_images` (every node; the
// first quantized node's differences all +-1 and at rounding ties), and the
// probe outputs leave the logits unchanged.
void check_trained(const std::string& checkpoint, const std::string& dir, int64_t images,
                   int64_t code_images, const std::string& tag) {
  export_::RebuiltModel r = export_::rebuild_from_checkpoint(checkpoint);
  const std::string pqm_path = dir + "/model.pqm", onnx_path = dir + "/model.onnx";
  export_::export_checkpoint(checkpoint, pqm_path);
  ox::OnnxOptions o;
  const export_::ExportReport rep = ox::export_checkpoint_onnx(checkpoint, onnx_path, o);
  EXPECT_EQ(rep.file_bytes, fs::file_size(onnx_path));
  const export_::ExportPlan plan =
      export_::build_export_plan(*r.model, r.config.mean, r.config.std);
  const onnx::ModelProto qcdq = ox::read_onnx_model(onnx_path);
  expect_pqm_constants(plan, qcdq);

  const Pixels data = test_pixels(r.config, images);
  const int64_t n = data.pixels.size(0);
  const at::Tensor fq = fake_quant_logits(*r.model, r.config, data.pixels);
  rt::Model pqm = rt::Model::load(pqm_path);
  pqm.set_threads(2);
  const OutputLayer L = output_layer(plan);
  const std::vector<std::string> nodes = code_nodes(plan);
  const PqmRun p = run_pqm(pqm, data.pixels, {}, {L.input});

  // (1) the whole set, the output layer's input as the only extra output.
  onnx::ModelProto probe = qcdq;
  add_outputs(probe, {{L.input, onnx::TensorProto::FLOAT}});
  save(probe, dir + "/probe.onnx");
  const OrtRun ort = run_ort(dir + "/probe.onnx", data.pixels, dir, {L.input});
  ASSERT_TRUE(ort.ok);
  const Agreement a = check_logits(plan, ort, p);
  const int64_t fq_agree = ort.logits.argmax(1).eq(fq.argmax(1)).sum().item<int64_t>();
  const double agreement = 100.0 * fq_agree / n;
  const double top1_ort = 100.0 * ort.logits.argmax(1).eq(data.labels).sum().item<int64_t>() / n;
  const double top1_pqm = 100.0 * p.logits.argmax(1).eq(data.labels).sum().item<int64_t>() / n;
  EXPECT_GE(agreement, 99.5);
  // ORT and the .pqm: the same arithmetic but for rounding ties.
  EXPECT_GE(100.0 * a.pqm_agree / n, 99.8);
  EXPECT_LE(std::abs(top1_ort - top1_pqm), 0.2);

  // (2) activation codes of every quantized node on the first images (the
  // probed run's logits must be the plain run's: probing changes nothing).
  const at::Tensor few = data.pixels.slice(0, 0, code_images);
  const PqmRun pc = run_pqm(pqm, few, nodes, {L.input});
  const std::vector<std::string> probes = probe_names(qcdq, plan, L.input);
  const OrtRun oc = run_probed(qcdq, probes, few, dir);
  ASSERT_TRUE(oc.ok);
  const CodeCheck k = check_codes(qcdq, plan, oc, pc);
  EXPECT_GE(k.match_percent(), 99.5) << k.report;
  EXPECT_TRUE(at::equal(oc.logits, ort.logits.slice(0, 0, code_images)))
      << "probe outputs changed the logits by "
      << (oc.logits - ort.logits.slice(0, 0, code_images)).abs().max().item<float>();
  std::printf(
      "[onnx %s] %lld images: ORT vs fake-quant prediction agreement %.2f%% (%lld/%lld), vs "
      ".pqm %.2f%%; top-1 ORT %.2f%%, .pqm %.2f%%; max |logit diff| vs .pqm %.3g (tolerance "
      "per logit up to %.3g, worst ratio %.2f; %lld images within float rounding alone, %lld "
      "with a code difference reaching the output layer)\n[onnx %s] codes on %lld images: "
      "%.5f%% of %lld equal (max step %d; first node with a difference %s: %lld of %lld, at "
      "ties)%s\n",
      tag.c_str(), static_cast<long long>(n), agreement, static_cast<long long>(fq_agree),
      static_cast<long long>(n), 100.0 * a.pqm_agree / n, top1_ort, top1_pqm, a.max_logit_diff,
      a.max_bound, a.worst_ratio, static_cast<long long>(a.images_rounding_only),
      static_cast<long long>(a.images_with_code_diff), tag.c_str(),
      static_cast<long long>(code_images), k.match_percent(), static_cast<long long>(k.compared),
      k.max_step, k.first_node.c_str(), static_cast<long long>(k.first_differ),
      static_cast<long long>(k.first_compared), k.report.c_str());

  // QONNX of the same checkpoint: structure, then the file rewritten into
  // standard ops in ORT against the .pqm on the first images.
  o.format = ox::OnnxFormat::kQonnx;
  ox::export_checkpoint_onnx(checkpoint, dir + "/model.qonnx.onnx", o);
  const onnx::ModelProto qonnx = ox::read_onnx_model(dir + "/model.qonnx.onnx");
  expect_qonnx_structure(qonnx, "IntQuant", &plan);
  const OrtRun oq = run_probed(qonnx_to_standard(qonnx), probes, few, dir);
  ASSERT_TRUE(oq.ok);
  const Agreement aq = check_logits(plan, oq, pc);
  const CodeCheck kq = check_codes(qcdq, plan, oq, pc);
  EXPECT_GE(kq.match_percent(), 99.5) << kq.report;
  EXPECT_GE(100.0 * aq.pqm_agree / code_images, 99.0);
  EXPECT_LE((oq.logits - oc.logits).abs().max().item<double>(), a.max_bound + aq.max_bound)
      << "QONNX (rewritten) and QCDQ disagree by more than the tolerance against the .pqm";
  std::printf(
      "[onnx %s] QONNX (rewritten to standard ops) on %lld images: codes %.5f%% equal to the "
      ".pqm's, max |logit diff| %.3g, predictions %lld/%lld; vs QCDQ max |logit diff| %.3g\n",
      tag.c_str(), static_cast<long long>(code_images), kq.match_percent(), aq.max_logit_diff,
      static_cast<long long>(aq.pqm_agree), static_cast<long long>(code_images),
      (oq.logits - oc.logits).abs().max().item<double>());
}

}  // namespace

TEST(OnnxExport, EveryZooModelExportsBothFormatsThatPassTheChecker) {
  const std::string dir = temp_dir("onnx_zoo");
  for (const std::string& name : models::model_names()) {
    ASSERT_TRUE(models::model_info(name).exportable) << name;
    const bool imagenet = name == "alexnet_bn" || name.rfind("preact_resnet", 0) == 0;
    const int size = name == "alexnet_bn" ? 63 : (imagenet ? 32 : 0);
    run_zoo_case({name, size, policy(4, 4)}, dir);
  }
  fs::remove_all(dir);
  SKIP_NUMERICS_WITHOUT_ORT();
}

TEST(OnnxExport, EveryWeightFormAndActivationKind) {
  const std::string dir = temp_dir("onnx_forms");
  // 8-bit first/last: int32 weight codes (2q - 255 needs 9 bits).
  run_zoo_case({"resnet20", 0, policy(4, 4, nn::FirstLastRule::kEightBit)}, dir);
  // 1-bit weights: BipolarQuant in QONNX.
  run_zoo_case({"lenet5", 0, policy(1, 4)}, dir);
  nn::PrecisionPolicy sawb = policy(2, 2);
  sawb.wquant = quant::WeightQuantKind::kSawb;
  run_zoo_case({"svhn7", 0, sawb}, dir);
  run_zoo_case({"resnet20", 0, policy(3, 5)}, dir);
  // Full-precision activations: PACT's clip, or a plain ReLU.
  run_zoo_case({"resnet20", 0, policy(4, 32)}, dir);
  nn::PrecisionPolicy relu = policy(32, 32);
  relu.aquant = nn::ActivationKind::kRelu;
  run_zoo_case({"lenet5", 0, relu}, dir);
  fs::remove_all(dir);
  SKIP_NUMERICS_WITHOUT_ORT();
}

TEST(OnnxExport, QuantOpNameAndMetadata) {
  at::manual_seed(3);
  auto model = models::create_model("lenet5", {});
  policy(4, 4).apply(*model);
  export_::ExportMetadata meta;
  meta.model = "lenet5";
  meta.classes = {"a", "b"};
  meta.precision = "W4/A4";
  ox::OnnxOptions o;
  o.format = ox::OnnxFormat::kQonnx;
  o.qonnx_quant_op = "Quant";
  const onnx::ModelProto m = ox::build_onnx_model(*model, {}, {}, o, meta);
  ox::check_onnx_model(m, "lenet5");
  expect_qonnx_structure(m, "Quant");
  EXPECT_EQ(m.ir_version(), ox::kIrVersion);
  EXPECT_EQ(m.opset_import(0).version(), ox::kOpsetVersion);
  std::map<std::string, std::string> props;
  for (const auto& p : m.metadata_props()) props[p.key()] = p.value();
  EXPECT_EQ(props["model"], "lenet5");
  EXPECT_EQ(props["classes"], "[\"a\",\"b\"]");
  EXPECT_EQ(props["pactq_format"], "qonnx");
  EXPECT_EQ(m.graph().input(0).name(), "pixels");
  EXPECT_EQ(m.graph().output(0).name(), "logits");
  o.qonnx_quant_op = "Foo";
  EXPECT_THROW(ox::build_onnx_model(*model, {}, {}, o, meta), std::invalid_argument);
}

TEST(OnnxExport, TheCheckerRejectsABrokenGraphAndNothingIsWritten) {
  at::manual_seed(3);
  auto model = models::create_model("lenet5", {});
  policy(4, 4).apply(*model);
  onnx::ModelProto m = ox::build_onnx_model(*model, {}, {}, {}, {});
  m.mutable_graph()->mutable_node(3)->set_input(0, "no_such_tensor");
  const std::string dir = temp_dir("onnx_bad");
  try {
    ox::write_onnx_model(m, dir + "/bad.onnx");
    ADD_FAILURE() << "a graph reading an undefined tensor was written";
  } catch (const std::runtime_error& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find(dir + "/bad.onnx: ONNX checker"), std::string::npos) << what;
  }
  EXPECT_TRUE(fs::is_empty(dir));  // neither the file nor a temporary
  fs::remove_all(dir);
}

TEST(OnnxExport, CliFormatsAndBadOptionsAreNamed) {
  if (!fs::exists(kFashion)) PACTQ_SKIP_MISSING("dataset-fashion-mnist not installed");
  const std::string dir = temp_dir("onnx_cli");
  train::TrainConfig c;
  c.model = "lenet5";
  c.dataset = "fashion-mnist";
  c.epochs = 1;
  c.max_steps = 2;
  c.batch_size = 32;
  c.limit_train = 64;
  c.limit_test = 32;
  c.out = dir + "/run";
  c.quiet = true;
  c.threads = 2;
  train::run_training(c);
  const std::string exe = std::string(PACTQ_BINARY_DIR) + "/pactq";
  const std::string ckpt = c.out + "/last.pt";
  auto run = [&](const std::string& args) {
    const std::string log = dir + "/log.txt";
    const int rc = std::system((exe + " export " + args + " > " + log + " 2>&1").c_str());
    return std::make_pair(rc, read_text(log));
  };
  auto [rc, out] = run(ckpt + " -o " + dir + "/m.onnx");
  EXPECT_EQ(rc, 0) << out;
  EXPECT_NE(out.find("ONNX QCDQ (opset 13, IR 7)"), std::string::npos) << out;
  std::tie(rc, out) = run(ckpt + " -o " + dir + "/q.onnx --format qonnx --qonnx-op Quant");
  EXPECT_EQ(rc, 0) << out;
  EXPECT_NE(out.find("ONNX QONNX"), std::string::npos) << out;
  expect_qonnx_structure(ox::read_onnx_model(dir + "/q.onnx"), "Quant");
  const std::vector<std::pair<std::string, std::string>> bad = {
      {"-o " + dir + "/x.onnx --format pqm", "--format pqm writes a .pqm file"},
      {"-o " + dir + "/x.pqm --format qcdq", "--format qcdq writes ONNX; name the output *.onnx"},
      {"-o " + dir + "/x.onnx --verify 10", "--verify: compares a .pqm"},
      {"-o " + dir + "/x.onnx --format onnx", "--format"},
      {"-o " + dir + "/x.onnx --format qonnx --qonnx-op Bar", "--qonnx-op"},
  };
  for (const auto& [args, expected] : bad) {
    std::tie(rc, out) = run(ckpt + " " + args);
    EXPECT_NE(rc, 0) << args;
    EXPECT_NE(out.find(expected), std::string::npos) << args << "\n" << out;
    EXPECT_FALSE(fs::exists(dir + "/x.onnx") || fs::exists(dir + "/x.pqm")) << args;
  }
  std::tie(rc, out) = run(dir + "/missing.pt -o " + dir + "/x.onnx");
  EXPECT_NE(rc, 0);
  EXPECT_NE(out.find(dir + "/missing.pt: checkpoint not found"), std::string::npos) << out;
  fs::remove_all(dir);
}

TEST(OnnxRuntime, Lenet5W4A4AndW2A2OnFashionMnist) {
  if (!fs::exists(kFashion)) PACTQ_SKIP_MISSING("dataset-fashion-mnist not installed");
  SKIP_WITHOUT_ORT();
  const std::string dir = temp_dir("onnx_lenet");
  for (const std::string bits : {"4", "2"}) {
    train::TrainConfig c;
    c.model = "lenet5";
    c.dataset = "fashion-mnist";
    c.wbits = c.abits = bits;
    c.alpha_init = 6;
    c.epochs = 1;
    c.batch_size = 64;
    c.lr = 0.05;
    c.schedule = "cosine";
    c.limit_train = 2048;
    c.limit_test = 200;
    c.out = dir + "/w" + bits;
    c.quiet = true;
    c.threads = 2;
    train::run_training(c);
    check_trained(c.out + "/last.pt", c.out, 10000, 500, "lenet5 W" + bits + "A" + bits);
  }
  fs::remove_all(dir);
}

// A realistic quantized ResNet20 in seconds: the pretrained float model,
// MSE-calibrated alphas (pactq train --max-steps 0), then BatchNorm
// statistics re-estimated on 384 training images for the quantized weights
// (DoReFa changes each layer's output scale, so the float model's no longer
// fit). Written as a checkpoint, the way pactq export reads models.
std::string resnet20_checkpoint(const std::string& dir, const std::string& bits) {
  train::TrainConfig c;
  c.model = "resnet20";
  c.dataset = "cifar10";
  c.data_dir = kCifar;
  c.train_files = {"data_batch_1.bin"};
  c.wbits = c.abits = bits;
  c.first_last = "fp";
  c.init_from = kPretrained;
  c.alpha_calibration = "mse";
  c.calibration_batches = 1;
  c.batch_size = 128;
  c.max_steps = 0;
  c.limit_train = 384;
  c.limit_test = 100;
  c.out = dir + "/w" + bits;
  c.quiet = true;
  c.threads = 2;
  train::run_training(c);
  export_::RebuiltModel r = export_::rebuild_from_checkpoint(c.out + "/last.pt");
  for (const auto& m : r.model->modules()) {
    if (auto bn = std::dynamic_pointer_cast<torch::nn::BatchNorm2dImpl>(m)) {
      bn->options.momentum(c10::nullopt);  // a cumulative average over the batches
      bn->reset_running_stats();
    }
  }
  {
    at::NoGradGuard no_grad;
    r.model->train();
    r.config.augment = false;
    auto loader = train::make_train_loader(r.config);
    loader->start_epoch(0);
    while (auto b = loader->next()) r.model->forward(b->images);
    r.model->eval();
  }
  const std::string path = c.out + "/calibrated.pt";
  train::save_checkpoint(path, r.config, *r.model, nullptr, train::TrainState{});
  return path;
}

TEST(OnnxRuntime, Resnet20W4A4AndW2A2OnCifar10) {
  if (!fs::exists(kPretrained) || !fs::exists(kCifar))
    PACTQ_SKIP_MISSING("shared data not present");
  SKIP_WITHOUT_ORT();
  const std::string dir = temp_dir("onnx_r20");
  for (const std::string bits : {"4", "2"}) {
    const std::string ckpt = resnet20_checkpoint(dir, bits);
    check_trained(ckpt, dir + "/w" + bits, 1000, 50, "resnet20 W" + bits + "A" + bits);
  }
  fs::remove_all(dir);
}
