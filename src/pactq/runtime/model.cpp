// .pqm loader (complete validation), buffer planner and graph executor.
#include "pactq/runtime/model.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <fstream>
#include <limits>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "pactq/runtime/kernels/kernels.h"
#include "pactq/runtime/pack.h"
#include "pactq/runtime/thread_pool.h"

namespace pactq::rt {

using nlohmann::json;
namespace k = kernels;

namespace {

constexpr uint64_t kMaxHeaderBytes = 100ull << 20;
constexpr int64_t kMaxDim = 1 << 20;
constexpr int64_t kMaxElements = int64_t{1} << 28;  // per image per value
constexpr int kMaxKernel = 64;
constexpr int kMaxNodes = 100000;
constexpr size_t kSlack = 64;  // bytes readable past every buffer (AVX2 quad loads)

enum class Op { kInput, kConv, kLinear, kMaxPool, kAvgPool, kGap, kFlatten, kAdd, kAffine };

const char* op_name(Op op) {
  switch (op) {
    case Op::kInput:
      return "input";
    case Op::kConv:
      return "conv2d";
    case Op::kLinear:
      return "linear";
    case Op::kMaxPool:
      return "max_pool2d";
    case Op::kAvgPool:
      return "avg_pool2d";
    case Op::kGap:
      return "global_avg_pool";
    case Op::kFlatten:
      return "flatten";
    case Op::kAdd:
      return "add";
    case Op::kAffine:
      return "affine";
  }
  return "?";
}

struct TensorInfo {
  std::string dtype;
  std::vector<int64_t> shape;
  uint64_t begin = 0, end = 0;
  int64_t numel = 0;
};

// Type and shape of a node's output (per image).
struct ValueInfo {
  int c = 0, h = 0, w = 0;
  bool codes = false;
  int bits = 0;
  float alpha = 0.f, scale = 0.f;
  int64_t elements() const { return int64_t{c} * h * w; }
  size_t bytes() const { return static_cast<size_t>(elements()) * (codes ? 1 : 4); }
};

struct Node {
  std::string name;
  Op op = Op::kInput;
  std::vector<int> inputs;  // node indices
  ValueInfo out;
  OutputSpec spec;  // requested output (conv, linear, avg pool, gap, add, affine)
  // input
  std::vector<float> mean, stdev;
  // conv / linear / pools
  k::ConvGeom geom;
  k::PoolGeom pool{};
  bool integer_path = false;
  bool w_codes = false;
  int wbits = 0;
  float w_scale = 1.f;
  size_t weight_file_bytes = 0;
  k::PackedQConv qconv;
  k::PackedFConv fconv;
  std::vector<float> out_scale, out_bias;  // conv/linear; affine scale/bias
  bool has_residual = false;
  int res_stride = 1, res_pad = 0;
};

struct Plan {
  std::vector<size_t> offset;  // per node, per-image units
  std::vector<size_t> stride;  // per node: bytes per image (padded)
  size_t total = 0;            // per image
};

std::string fmt_float(float v) {
  std::ostringstream s;
  s << v;
  return s.str();
}

}  // namespace

struct Model::Impl {
  std::string file;
  size_t file_bytes = 0, weight_bytes = 0;
  std::map<std::string, std::string> metadata;
  std::vector<std::string> class_names;
  std::vector<Node> nodes;
  int output = 0;
  Plan plan, debug_plan;
  std::vector<uint8_t> arena;
  int threads = 1;
  std::unique_ptr<ThreadPool> pool = std::make_unique<ThreadPool>(1);
  const k::QConvKernel* qk = &k::qconv_kernel();

  // ------------------------------------------------------------ loading
  [[noreturn]] void fail(const std::string& what) const { throw FormatError(file + ": " + what); }

  void parse(const uint8_t* data, size_t size);
  void parse_node(const json& jn, size_t index, const std::map<std::string, TensorInfo>& tensors,
                  const uint8_t* blob, std::map<std::string, int>& by_name);
  void make_plans();
  Plan plan_buffers(bool reuse) const;

  // ------------------------------------------------------------ running
  uint8_t* prepare(const Plan& p, int batch) { return prepare_in(arena, p, batch); }
  static uint8_t* prepare_in(std::vector<uint8_t>& buffer, const Plan& p, int batch);
  void execute(const Plan& p, uint8_t* base, const float* pixels, int batch, ThreadPool& tp);
  // Arenas of the image slices that run() gives each thread at large batches.
  std::vector<std::vector<uint8_t>> slice_arenas;
  void* value_ptr(const Plan& p, uint8_t* base, int node, int batch, int image) const {
    return base + p.offset[node] * static_cast<size_t>(batch) +
           p.stride[node] * static_cast<size_t>(image);
  }
  NodeOutput read_value(const Plan& p, uint8_t* base, int node, int batch) const;
};

// ================================================================ parsing

namespace {

struct Ctx {
  std::string file;
  std::string where;  // "node 'x'"
  [[noreturn]] void fail(const std::string& what) const {
    throw FormatError(file + ": " + where + ": " + what);
  }
};

const json& member(const Ctx& c, const json& obj, const char* key) {
  auto it = obj.find(key);
  if (it == obj.end()) c.fail(std::string("missing '") + key + "'");
  return *it;
}

int64_t as_int(const Ctx& c, const json& v, const std::string& what, int64_t lo, int64_t hi) {
  int64_t x;
  if (v.is_number_unsigned()) {
    const uint64_t u = v.get<uint64_t>();
    if (u > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
      c.fail(what + " out of range");
    }
    x = static_cast<int64_t>(u);
  } else if (v.is_number_integer()) {
    x = v.get<int64_t>();
  } else {
    c.fail(what + " must be an integer");
  }
  if (x < lo || x > hi) {
    c.fail(what + " = " + std::to_string(x) + " out of range [" + std::to_string(lo) + ", " +
           std::to_string(hi) + "]");
  }
  return x;
}

int get_int(const Ctx& c, const json& obj, const char* key, int64_t lo, int64_t hi) {
  return static_cast<int>(as_int(c, member(c, obj, key), key, lo, hi));
}

float get_float(const Ctx& c, const json& obj, const char* key) {
  const json& v = member(c, obj, key);
  if (!v.is_number()) c.fail(std::string("'") + key + "' must be a number");
  const double d = v.get<double>();
  if (!std::isfinite(d) || std::fabs(d) > 3.0e38) c.fail(std::string("'") + key + "' not finite");
  return static_cast<float>(d);
}

std::string get_string(const Ctx& c, const json& obj, const char* key) {
  const json& v = member(c, obj, key);
  if (!v.is_string()) c.fail(std::string("'") + key + "' must be a string");
  return v.get<std::string>();
}

// [a, b] pair of ints.
void get_pair(const Ctx& c, const json& obj, const char* key, int lo, int hi, int* a, int* b) {
  const json& v = member(c, obj, key);
  if (!v.is_array() || v.size() != 2) c.fail(std::string("'") + key + "' must be [h, w]");
  *a = static_cast<int>(as_int(c, v[0], key, lo, hi));
  *b = static_cast<int>(as_int(c, v[1], key, lo, hi));
}

OutputSpec parse_output(const Ctx& c, const json& jn) {
  const json& o = member(c, jn, "output");
  if (!o.is_object()) c.fail("'output' must be an object");
  const std::string type = get_string(c, o, "type");
  OutputSpec s;
  if (type == "codes") {
    s.codes = true;
    const json& b = member(c, o, "bits");
    s.bits = static_cast<int>(as_int(c, b, "output bits", std::numeric_limits<int>::min(),
                                     std::numeric_limits<int>::max()));
    if (s.bits < 1 || s.bits > 8) {
      c.fail("unsupported activation bits " + std::to_string(s.bits) + " (expected 1..8)");
    }
    s.alpha = get_float(c, o, "alpha");
    if (!(s.alpha > 0.f)) c.fail("output alpha must be > 0");
  } else if (type == "float") {
    std::string act = "none";
    if (o.contains("act")) act = get_string(c, o, "act");
    if (act == "none") {
      s.act = FloatAct::kNone;
    } else if (act == "relu") {
      s.act = FloatAct::kRelu;
    } else if (act == "clip") {
      s.act = FloatAct::kClip;
      s.alpha = get_float(c, o, "alpha");
      if (!(s.alpha > 0.f)) c.fail("clip alpha must be > 0");
    } else {
      c.fail("unknown float activation '" + act + "'");
    }
  } else {
    c.fail("unknown output type '" + type + "' (expected float or codes)");
  }
  return s;
}

ValueInfo value_of(const OutputSpec& s, int ch, int h, int w) {
  ValueInfo v;
  v.c = ch;
  v.h = h;
  v.w = w;
  v.codes = s.codes;
  if (s.codes) {
    v.bits = s.bits;
    v.alpha = s.alpha;
    v.scale = s.alpha / static_cast<float>((1 << s.bits) - 1);
  }
  return v;
}

}  // namespace

void Model::Impl::parse(const uint8_t* data, size_t size) {
  file_bytes = size;
  if (size < 8) fail("file too small (" + std::to_string(size) + " bytes) for a .pqm header");
  // A training checkpoint (a zip archive) is the likely mix-up: say so.
  if (data[0] == 'P' && data[1] == 'K' && data[2] == 3 && data[3] == 4)
    fail("not a .pqm file but a zip archive (a .pt checkpoint? export it with `pactq export`)");
  uint64_t n = 0;
  for (int i = 0; i < 8; ++i) n |= static_cast<uint64_t>(data[i]) << (8 * i);
  if (n > size - 8) {
    fail("header length " + std::to_string(n) + " exceeds file size " + std::to_string(size) +
         " (truncated file?)");
  }
  if (n > kMaxHeaderBytes) fail("header length " + std::to_string(n) + " too large");
  if (n == 0) fail("empty JSON header");
  const uint8_t* blob = data + 8 + n;
  const uint64_t data_size = size - 8 - n;

  json header;
  try {
    header = json::parse(data + 8, data + 8 + n);
  } catch (const json::exception& e) {
    fail(std::string("header is not valid JSON: ") + e.what());
  }
  if (!header.is_object()) fail("header JSON is not an object");

  // Metadata first: format checks come before anything else.
  auto mit = header.find("__metadata__");
  if (mit == header.end()) fail("missing __metadata__ (not a .pqm file)");
  if (!mit->is_object()) fail("__metadata__ must be an object");
  for (auto it = mit->begin(); it != mit->end(); ++it) {
    if (!it->is_string()) fail("__metadata__ value '" + it.key() + "' must be a string");
    metadata[it.key()] = it->get<std::string>();
  }
  auto meta = [&](const char* key) -> const std::string& {
    auto it = metadata.find(key);
    if (it == metadata.end()) fail(std::string("__metadata__ lacks '") + key + "'");
    return it->second;
  };
  if (meta("format") != "pqm")
    fail("__metadata__ format is '" + metadata["format"] + "', not 'pqm'");
  if (meta("format_version") != "1") {
    fail("unsupported format_version '" + metadata["format_version"] + "' (this reader knows 1)");
  }

  // Tensors.
  std::map<std::string, TensorInfo> tensors;
  for (auto it = header.begin(); it != header.end(); ++it) {
    if (it.key() == "__metadata__") continue;
    Ctx c{file, "tensor '" + it.key() + "'"};
    const json& t = *it;
    if (!t.is_object()) c.fail("entry must be an object");
    TensorInfo ti;
    ti.dtype = get_string(c, t, "dtype");
    int64_t esize = 0;
    if (ti.dtype == "U8") {
      esize = 1;
    } else if (ti.dtype == "F32" || ti.dtype == "I32") {
      esize = 4;
    } else {
      c.fail("unsupported dtype '" + ti.dtype + "' (expected U8, F32 or I32)");
    }
    const json& sh = member(c, t, "shape");
    if (!sh.is_array() || sh.size() > 8) c.fail("shape must be an array of at most 8 dims");
    ti.numel = 1;
    for (const json& d : sh) {
      const int64_t v = as_int(c, d, "shape dim", 0, int64_t{1} << 40);
      ti.shape.push_back(v);
      if (v != 0 && ti.numel > (int64_t{1} << 40) / v) c.fail("shape too large");
      ti.numel *= v;
    }
    const json& off = member(c, t, "data_offsets");
    if (!off.is_array() || off.size() != 2) c.fail("data_offsets must be [begin, end]");
    const int64_t b =
        as_int(c, off[0], "data_offsets begin", 0, std::numeric_limits<int64_t>::max());
    const int64_t e = as_int(c, off[1], "data_offsets end", 0, std::numeric_limits<int64_t>::max());
    if (b > e || static_cast<uint64_t>(e) > data_size) {
      c.fail("data_offsets [" + std::to_string(b) + ", " + std::to_string(e) +
             "] exceed data size " + std::to_string(data_size));
    }
    if (e - b != ti.numel * esize) {
      c.fail("data_offsets span " + std::to_string(e - b) + " bytes but dtype " + ti.dtype +
             " shape has " + std::to_string(ti.numel * esize));
    }
    ti.begin = static_cast<uint64_t>(b);
    ti.end = static_cast<uint64_t>(e);
    tensors[it.key()] = ti;
  }
  {
    std::vector<std::pair<uint64_t, uint64_t>> spans;
    for (const auto& kv : tensors)
      if (kv.second.end > kv.second.begin) spans.emplace_back(kv.second.begin, kv.second.end);
    std::sort(spans.begin(), spans.end());
    for (size_t i = 1; i < spans.size(); ++i) {
      if (spans[i].first < spans[i - 1].second) {
        fail("tensor data ranges overlap at offset " + std::to_string(spans[i].first));
      }
    }
  }

  // Optional descriptive metadata.
  if (metadata.count("classes")) {
    json cl;
    try {
      cl = json::parse(metadata["classes"]);
    } catch (const json::exception& e) {
      fail(std::string("__metadata__ classes is not valid JSON: ") + e.what());
    }
    if (!cl.is_array()) fail("__metadata__ classes must be a JSON array of strings");
    for (const json& s : cl) {
      if (!s.is_string()) fail("__metadata__ classes must be a JSON array of strings");
      class_names.push_back(s.get<std::string>());
    }
  }

  // Graph.
  json graph;
  try {
    graph = json::parse(meta("graph"));
  } catch (const json::exception& e) {
    fail(std::string("__metadata__ graph is not valid JSON: ") + e.what());
  }
  Ctx gc{file, "graph"};
  if (!graph.is_object()) gc.fail("must be a JSON object");
  const json& jnodes = member(gc, graph, "nodes");
  if (!jnodes.is_array() || jnodes.empty()) gc.fail("'nodes' must be a non-empty array");
  if (jnodes.size() > static_cast<size_t>(kMaxNodes)) gc.fail("too many nodes");
  std::map<std::string, int> by_name;
  for (size_t i = 0; i < jnodes.size(); ++i) parse_node(jnodes[i], i, tensors, blob, by_name);
  if (graph.contains("output")) {
    const std::string out = get_string(gc, graph, "output");
    auto it = by_name.find(out);
    if (it == by_name.end()) gc.fail("output '" + out + "' is not a node");
    output = it->second;
  } else {
    output = static_cast<int>(nodes.size()) - 1;
  }
  make_plans();
}

void Model::Impl::parse_node(const json& jn, size_t index,
                             const std::map<std::string, TensorInfo>& tensors, const uint8_t* blob,
                             std::map<std::string, int>& by_name) {
  Ctx c{file, "node #" + std::to_string(index)};
  if (!jn.is_object()) c.fail("must be an object");
  Node nd;
  nd.name = get_string(c, jn, "name");
  if (nd.name.empty()) c.fail("empty name");
  c.where = "node '" + nd.name + "'";
  if (by_name.count(nd.name)) c.fail("duplicate node name");
  const std::string op = get_string(c, jn, "op");
  static const std::map<std::string, Op> ops = {
      {"input", Op::kInput},        {"conv2d", Op::kConv},
      {"linear", Op::kLinear},      {"max_pool2d", Op::kMaxPool},
      {"avg_pool2d", Op::kAvgPool}, {"global_avg_pool", Op::kGap},
      {"flatten", Op::kFlatten},    {"add", Op::kAdd},
      {"affine", Op::kAffine}};
  auto oit = ops.find(op);
  if (oit == ops.end()) c.fail("unknown op '" + op + "'");
  nd.op = oit->second;

  const json empty = json::object();
  const json* attrs = &empty;
  if (jn.contains("attrs")) {
    attrs = &jn["attrs"];
    if (!attrs->is_object()) c.fail("'attrs' must be an object");
  }
  const json* jt = &empty;
  if (jn.contains("tensors")) {
    jt = &jn["tensors"];
    if (!jt->is_object()) c.fail("'tensors' must be an object");
  }
  const json& jin = member(c, jn, "inputs");
  if (!jin.is_array()) c.fail("'inputs' must be an array");
  for (const json& s : jin) {
    if (!s.is_string()) c.fail("inputs must be node names");
    auto it = by_name.find(s.get<std::string>());
    if (it == by_name.end()) {
      c.fail("input '" + s.get<std::string>() + "' is not an earlier node");
    }
    nd.inputs.push_back(it->second);
  }
  auto need_inputs = [&](size_t lo, size_t hi) {
    if (nd.inputs.size() < lo || nd.inputs.size() > hi) {
      c.fail(std::string(op_name(nd.op)) + " takes " + std::to_string(lo) +
             (hi != lo ? ".." + std::to_string(hi) : std::string()) + " inputs, got " +
             std::to_string(nd.inputs.size()));
    }
  };
  auto in = [&](size_t i) -> const ValueInfo& { return nodes[nd.inputs[i]].out; };
  auto check_value = [&](const ValueInfo& v) {
    if (v.c < 1 || v.h < 1 || v.w < 1 || v.c > kMaxDim || v.h > kMaxDim || v.w > kMaxDim ||
        v.elements() > kMaxElements) {
      c.fail("output shape [" + std::to_string(v.c) + ", " + std::to_string(v.h) + ", " +
             std::to_string(v.w) + "] invalid or too large");
    }
  };
  // Looks up the F32 tensor of role `role` with `count` elements.
  auto f32_tensor = [&](const char* role, int64_t count) {
    const std::string tname = get_string(c, *jt, role);
    auto it = tensors.find(tname);
    if (it == tensors.end()) c.fail(std::string(role) + " tensor '" + tname + "' not in file");
    const TensorInfo& ti = it->second;
    if (ti.dtype != "F32") c.fail("tensor '" + tname + "' must be F32, is " + ti.dtype);
    if (ti.numel != count) {
      c.fail("tensor '" + tname + "' has " + std::to_string(ti.numel) + " elements, node needs " +
             std::to_string(count));
    }
    std::vector<float> v(static_cast<size_t>(count));
    if (count) std::memcpy(v.data(), blob + ti.begin, static_cast<size_t>(count) * 4);
    weight_bytes += static_cast<size_t>(ti.end - ti.begin);
    return v;
  };

  switch (nd.op) {
    case Op::kInput: {
      need_inputs(0, 0);
      if (index != 0) c.fail("the input node must be the first node");
      const int ch = get_int(c, *attrs, "channels", 1, 4096);
      const int h = get_int(c, *attrs, "height", 1, 65536);
      const int w = get_int(c, *attrs, "width", 1, 65536);
      nd.out = value_of(OutputSpec::Float(), ch, h, w);
      check_value(nd.out);
      for (const char* key : {"mean", "std"}) {
        const json& a = member(c, *attrs, key);
        if (!a.is_array() || static_cast<int>(a.size()) != ch) {
          c.fail(std::string("'") + key + "' needs " + std::to_string(ch) + " values");
        }
        std::vector<float>& dst = key[0] == 'm' ? nd.mean : nd.stdev;
        for (const json& x : a) {
          if (!x.is_number()) c.fail(std::string("'") + key + "' values must be numbers");
          const double d = x.get<double>();
          if (!std::isfinite(d) || std::fabs(d) > 1e30) c.fail(std::string(key) + " not finite");
          dst.push_back(static_cast<float>(d));
        }
      }
      for (float s : nd.stdev)
        if (s == 0.f) c.fail("std must be non-zero");
      break;
    }
    case Op::kConv:
    case Op::kLinear: {
      need_inputs(1, 2);
      if (index == 0) c.fail("the first node must be the input node");
      const ValueInfo& x = in(0);
      k::ConvGeom& g = nd.geom;
      if (nd.op == Op::kConv) {
        const int cin = get_int(c, *attrs, "in_channels", 1, kMaxDim);
        const int cout = get_int(c, *attrs, "out_channels", 1, kMaxDim);
        get_pair(c, *attrs, "kernel", 1, kMaxKernel, &g.kh, &g.kw);
        get_pair(c, *attrs, "stride", 1, kMaxKernel, &g.sh, &g.sw);
        get_pair(c, *attrs, "padding", 0, kMaxKernel, &g.ph, &g.pw);
        g.groups = get_int(c, *attrs, "groups", 1, kMaxDim);
        if (cin != x.c) {
          c.fail("in_channels " + std::to_string(cin) + " != input channels " +
                 std::to_string(x.c) + " of '" + nodes[nd.inputs[0]].name + "'");
        }
        if (cin % g.groups || cout % g.groups) c.fail("groups must divide in/out channels");
        if (x.h + 2 * g.ph < g.kh || x.w + 2 * g.pw < g.kw) c.fail("kernel larger than input");
        g.in_h = x.h;
        g.in_w = x.w;
        g.in_c = cin;
        g.out_c = cout;
        g.out_h = (x.h + 2 * g.ph - g.kh) / g.sh + 1;
        g.out_w = (x.w + 2 * g.pw - g.kw) / g.sw + 1;
      } else {
        const int fin = get_int(c, *attrs, "in_features", 1, kMaxElements);
        const int fout = get_int(c, *attrs, "out_features", 1, kMaxDim);
        if (x.h != 1 || x.w != 1 || x.c != fin) {
          c.fail("linear needs an input of shape [" + std::to_string(fin) + ", 1, 1], '" +
                 nodes[nd.inputs[0]].name + "' gives [" + std::to_string(x.c) + ", " +
                 std::to_string(x.h) + ", " + std::to_string(x.w) + "] (flatten first)");
        }
        g.in_c = fin;
        g.out_c = fout;
      }
      g.cin_g = g.in_c / g.groups;
      g.cout_g = g.out_c / g.groups;
      nd.spec = parse_output(c, jn);
      nd.out = value_of(nd.spec, g.out_c, g.out_h, g.out_w);
      check_value(nd.out);
      const int64_t taps = int64_t{g.kh} * g.kw;
      const int64_t count = int64_t{g.out_c} * g.cin_g * taps;
      const int64_t kdim = int64_t{g.cin_g} * taps;

      // Weights.
      const std::string wdt = get_string(c, *attrs, "weight_dtype");
      const std::string wname = get_string(c, *jt, "weight");
      auto wit = tensors.find(wname);
      if (wit == tensors.end()) c.fail("weight tensor '" + wname + "' not in file");
      const TensorInfo& wt = wit->second;
      std::vector<uint8_t> codes;
      std::vector<float> wf;
      if (wdt == "codes") {
        nd.w_codes = true;
        nd.wbits = static_cast<int>(as_int(c, member(c, *attrs, "weight_bits"), "weight_bits",
                                           std::numeric_limits<int>::min(),
                                           std::numeric_limits<int>::max()));
        if (nd.wbits < 1 || nd.wbits > 8) {
          c.fail("unsupported weight bits " + std::to_string(nd.wbits) + " (expected 1..8)");
        }
        const int pb = get_int(c, *attrs, "weight_packed_bits", 1, 8);
        if (pb != packed_bits_for(nd.wbits)) {
          c.fail("weight_packed_bits " + std::to_string(pb) +
                 " != " + std::to_string(packed_bits_for(nd.wbits)) + " for " +
                 std::to_string(nd.wbits) + "-bit weights");
        }
        nd.w_scale = get_float(c, *attrs, "weight_scale");
        if (wt.dtype != "U8" || wt.shape.size() != 1) {
          c.fail("packed weight tensor '" + wname + "' must be U8 with shape [bytes]");
        }
        const size_t expect = packed_size(static_cast<size_t>(count), pb);
        if (static_cast<size_t>(wt.numel) != expect) {
          c.fail("packed weight tensor '" + wname + "' has " + std::to_string(wt.numel) +
                 " bytes, expected " + std::to_string(expect) + " for " + std::to_string(count) +
                 " codes at " + std::to_string(pb) + " bits");
        }
        codes = unpack_codes(blob + wt.begin, static_cast<size_t>(wt.numel),
                             static_cast<size_t>(count), nd.wbits);
        const int nw = (1 << nd.wbits) - 1;
        for (size_t i = 0; i < codes.size(); ++i) {
          if (codes[i] > nw) {
            c.fail("weight code " + std::to_string(codes[i]) + " at index " + std::to_string(i) +
                   " exceeds " + std::to_string(nw) + " for " + std::to_string(nd.wbits) +
                   "-bit weights");
          }
        }
      } else if (wdt == "f32") {
        if (wt.dtype != "F32") c.fail("weight tensor '" + wname + "' must be F32");
        if (wt.numel != count) {
          c.fail("weight tensor '" + wname + "' has " + std::to_string(wt.numel) +
                 " elements, node needs " + std::to_string(count));
        }
        wf.resize(static_cast<size_t>(count));
        std::memcpy(wf.data(), blob + wt.begin, static_cast<size_t>(count) * 4);
      } else {
        c.fail("unknown weight_dtype '" + wdt + "' (expected f32 or codes)");
      }
      nd.weight_file_bytes = static_cast<size_t>(wt.end - wt.begin);
      weight_bytes += nd.weight_file_bytes;
      nd.out_scale = f32_tensor("out_scale", g.out_c);
      nd.out_bias = f32_tensor("out_bias", g.out_c);

      // Residual.
      if (nd.inputs.size() == 2) {
        nd.has_residual = true;
        nd.res_stride = get_int(c, *attrs, "residual_stride", 1, kMaxKernel);
        nd.res_pad = get_int(c, *attrs, "residual_pad_channels", 0, kMaxDim);
        const ValueInfo& r = in(1);
        const int rh = (r.h + nd.res_stride - 1) / nd.res_stride;
        const int rw = (r.w + nd.res_stride - 1) / nd.res_stride;
        if (r.c + 2 * nd.res_pad != g.out_c || rh != g.out_h || rw != g.out_w) {
          c.fail("residual '" + nodes[nd.inputs[1]].name + "' [" + std::to_string(r.c) + ", " +
                 std::to_string(r.h) + ", " + std::to_string(r.w) + "] with stride " +
                 std::to_string(nd.res_stride) + " and channel pad " + std::to_string(nd.res_pad) +
                 " does not match output [" + std::to_string(g.out_c) + ", " +
                 std::to_string(g.out_h) + ", " + std::to_string(g.out_w) + "]");
        }
      }

      nd.integer_path = nd.w_codes && x.codes;
      if (nd.integer_path) {
        const int64_t na = (1 << x.bits) - 1, nw = (1 << nd.wbits) - 1;
        if (kdim * na * nw > std::numeric_limits<int32_t>::max()) {
          c.fail("int32 accumulator could overflow (K = " + std::to_string(kdim) + ")");
        }
        qk->pack(g, codes.data(), nd.wbits, static_cast<int>(na), &nd.qconv);
      } else {
        if (nd.w_codes) {  // dequantize: w = w_scale * ((2q - n) / n)
          const int nw = (1 << nd.wbits) - 1;
          wf.resize(codes.size());
          for (size_t i = 0; i < codes.size(); ++i) {
            wf[i] = nd.w_scale * (static_cast<float>(2 * codes[i] - nw) / static_cast<float>(nw));
          }
        }
        k::fconv_pack(g, wf.data(), &nd.fconv);
      }
      break;
    }
    case Op::kMaxPool:
    case Op::kAvgPool: {
      need_inputs(1, 1);
      if (index == 0) c.fail("the first node must be the input node");
      const ValueInfo& x = in(0);
      k::PoolGeom& p = nd.pool;
      get_pair(c, *attrs, "kernel", 1, kMaxKernel, &p.kh, &p.kw);
      get_pair(c, *attrs, "stride", 1, kMaxKernel, &p.sh, &p.sw);
      get_pair(c, *attrs, "padding", 0, kMaxKernel, &p.ph, &p.pw);
      if (2 * p.ph > p.kh || 2 * p.pw > p.kw) c.fail("padding must be at most half the kernel");
      if (x.h + 2 * p.ph < p.kh || x.w + 2 * p.pw < p.kw) c.fail("kernel larger than input");
      p.in_h = x.h;
      p.in_w = x.w;
      p.c = x.c;
      p.out_h = (x.h + 2 * p.ph - p.kh) / p.sh + 1;
      p.out_w = (x.w + 2 * p.pw - p.kw) / p.sw + 1;
      if (nd.op == Op::kMaxPool) {
        nd.out = x;
        nd.out.h = p.out_h;
        nd.out.w = p.out_w;
      } else {
        nd.spec = parse_output(c, jn);
        nd.out = value_of(nd.spec, x.c, p.out_h, p.out_w);
      }
      check_value(nd.out);
      break;
    }
    case Op::kGap: {
      need_inputs(1, 1);
      if (index == 0) c.fail("the first node must be the input node");
      nd.spec = parse_output(c, jn);
      nd.out = value_of(nd.spec, in(0).c, 1, 1);
      break;
    }
    case Op::kFlatten: {
      need_inputs(1, 1);
      if (index == 0) c.fail("the first node must be the input node");
      nd.out = in(0);
      nd.out.c = static_cast<int>(in(0).elements());
      nd.out.h = nd.out.w = 1;
      check_value(nd.out);
      break;
    }
    case Op::kAdd: {
      need_inputs(2, 2);
      if (index == 0) c.fail("the first node must be the input node");
      const ValueInfo &a = in(0), &b = in(1);
      if (a.c != b.c || a.h != b.h || a.w != b.w) c.fail("add inputs have different shapes");
      nd.spec = parse_output(c, jn);
      nd.out = value_of(nd.spec, a.c, a.h, a.w);
      break;
    }
    case Op::kAffine: {
      need_inputs(1, 1);
      if (index == 0) c.fail("the first node must be the input node");
      const ValueInfo& x = in(0);
      nd.out_scale = f32_tensor("scale", x.c);
      nd.out_bias = f32_tensor("bias", x.c);
      nd.spec = parse_output(c, jn);
      nd.out = value_of(nd.spec, x.c, x.h, x.w);
      break;
    }
  }
  by_name[nd.name] = static_cast<int>(nodes.size());
  nodes.push_back(std::move(nd));
}

Plan Model::Impl::plan_buffers(bool reuse) const {
  const int n = static_cast<int>(nodes.size());
  Plan p;
  p.offset.assign(n, 0);
  p.stride.assign(n, 0);
  std::vector<int> last(n);
  for (int i = 0; i < n; ++i) last[i] = i;
  for (int i = 0; i < n; ++i)
    for (int j : nodes[i].inputs) last[j] = std::max(last[j], i);
  last[output] = n;
  for (int i = 0; i < n; ++i) {
    p.stride[i] = (nodes[i].out.bytes() + kSlack + 63) / 64 * 64;
    size_t off = 0;
    if (reuse) {
      // First fit among values live at i (defined before, used at or after i).
      std::vector<std::pair<size_t, size_t>> busy;
      for (int j = 0; j < i; ++j)
        if (last[j] >= i) busy.emplace_back(p.offset[j], p.offset[j] + p.stride[j]);
      std::sort(busy.begin(), busy.end());
      for (const auto& b : busy) {
        if (off + p.stride[i] <= b.first) break;
        off = std::max(off, b.second);
      }
    } else {
      off = p.total;
    }
    p.offset[i] = off;
    p.total = std::max(p.total, off + p.stride[i]);
  }
  return p;
}

void Model::Impl::make_plans() {
  plan = plan_buffers(true);
  debug_plan = plan_buffers(false);
}

// ================================================================ running

uint8_t* Model::Impl::prepare_in(std::vector<uint8_t>& buffer, const Plan& p, int batch) {
  const size_t need = p.total * static_cast<size_t>(batch) + 64;
  if (buffer.size() < need) {
    buffer.clear();
    buffer.shrink_to_fit();
    buffer.resize(need);
  }
  const uintptr_t a = reinterpret_cast<uintptr_t>(buffer.data());
  return buffer.data() + ((64 - a % 64) % 64);
}

void Model::Impl::execute(const Plan& p, uint8_t* base, const float* pixels, int batch,
                          ThreadPool& tp) {
  for (size_t ni = 0; ni < nodes.size(); ++ni) {
    const Node& nd = nodes[ni];
    const int id = static_cast<int>(ni);
    auto out_ref = [&](int b) {
      k::OutputRef o;
      o.data = value_ptr(p, base, id, batch, b);
      o.codes = nd.spec.codes;
      if (o.codes) {
        o.n_out = (1 << nd.spec.bits) - 1;
        o.inv = static_cast<float>(o.n_out) / nd.spec.alpha;
      }
      o.act = nd.spec.act;
      o.alpha = nd.spec.alpha;
      return o;
    };
    auto in_ref = [&](int which, int b) {
      const int src = nd.inputs[which];
      k::TensorRef t;
      t.data = value_ptr(p, base, src, batch, b);
      t.codes = nodes[src].out.codes;
      t.scale = nodes[src].out.scale;
      return t;
    };
    switch (nd.op) {
      case Op::kInput: {
        const int ch = nd.out.c;
        const size_t hw = static_cast<size_t>(nd.out.h) * nd.out.w;
        tp.parallel_for(batch, [&](int b) {
          const float* src = pixels + static_cast<size_t>(b) * ch * hw;
          float* dst = static_cast<float*>(value_ptr(p, base, id, batch, b));
          for (int c = 0; c < ch; ++c) {
            const float m = nd.mean[c], s = nd.stdev[c];
            for (size_t i = 0; i < hw; ++i) dst[i * ch + c] = (src[c * hw + i] - m) / s;
          }
        });
        break;
      }
      case Op::kConv:
      case Op::kLinear: {
        const k::ConvGeom& g = nd.geom;
        const Node& src = nodes[nd.inputs[0]];
        k::Epilogue e0;
        e0.scale = nd.out_scale.data();
        e0.bias = nd.out_bias.data();
        e0.out_codes = nd.spec.codes;
        if (e0.out_codes) {
          e0.n_out = (1 << nd.spec.bits) - 1;
          e0.inv = static_cast<float>(e0.n_out) / nd.spec.alpha;
        }
        e0.act = nd.spec.act;
        e0.alpha = nd.spec.alpha;
        if (nd.has_residual) {
          const ValueInfo& r = nodes[nd.inputs[1]].out;
          e0.res_codes = r.codes;
          e0.res_scale = r.scale;
          e0.res_h = r.h;
          e0.res_w = r.w;
          e0.res_c = r.c;
          e0.res_stride = nd.res_stride;
          e0.res_pad = nd.res_pad;
        }
        const int rows = g.out_h;
        const k::FConvRowsFn fconv = k::fconv_rows_kernel();
        tp.parallel_for(batch * rows, [&](int item) {
          const int b = item / rows, oh = item % rows;
          k::Epilogue e = e0;
          if (nd.has_residual) e.res = value_ptr(p, base, nd.inputs[1], batch, b);
          const void* x = value_ptr(p, base, nd.inputs[0], batch, b);
          void* y = value_ptr(p, base, id, batch, b);
          if (nd.integer_path) {
            qk->run_rows(nd.qconv, static_cast<const uint8_t*>(x), e, y, oh, oh + 1);
          } else {
            fconv(nd.fconv, x, src.out.codes, src.out.scale, e, y, oh, oh + 1);
          }
        });
        break;
      }
      case Op::kMaxPool: {
        const int rows = nd.pool.out_h;
        const bool codes = nd.out.codes;
        tp.parallel_for(batch * rows, [&](int item) {
          const int b = item / rows, oh = item % rows;
          k::max_pool_rows(nd.pool, value_ptr(p, base, nd.inputs[0], batch, b), codes,
                           value_ptr(p, base, id, batch, b), oh, oh + 1);
        });
        break;
      }
      case Op::kAvgPool: {
        const int rows = nd.pool.out_h;
        tp.parallel_for(batch * rows, [&](int item) {
          const int b = item / rows, oh = item % rows;
          k::avg_pool_rows(nd.pool, in_ref(0, b), out_ref(b), oh, oh + 1);
        });
        break;
      }
      case Op::kGap: {
        const ValueInfo& x = nodes[nd.inputs[0]].out;
        tp.parallel_for(
            batch, [&](int b) { k::global_avg_pool(x.h, x.w, x.c, in_ref(0, b), out_ref(b)); });
        break;
      }
      case Op::kFlatten: {
        const ValueInfo& x = nodes[nd.inputs[0]].out;
        const size_t hw = static_cast<size_t>(x.h) * x.w, es = x.codes ? 1 : 4;
        tp.parallel_for(batch, [&](int b) {
          const uint8_t* s =
              static_cast<const uint8_t*>(value_ptr(p, base, nd.inputs[0], batch, b));
          uint8_t* d = static_cast<uint8_t*>(value_ptr(p, base, id, batch, b));
          for (int c = 0; c < x.c; ++c)
            for (size_t i = 0; i < hw; ++i)
              std::memcpy(d + (c * hw + i) * es, s + (i * x.c + c) * es, es);
        });
        break;
      }
      case Op::kAdd: {
        const size_t n = static_cast<size_t>(nd.out.elements());
        tp.parallel_for(batch,
                        [&](int b) { k::add_values(n, in_ref(0, b), in_ref(1, b), out_ref(b)); });
        break;
      }
      case Op::kAffine: {
        const size_t pixels_n = static_cast<size_t>(nd.out.h) * nd.out.w;
        tp.parallel_for(batch, [&](int b) {
          k::affine_values(pixels_n, nd.out.c, in_ref(0, b), nd.out_scale.data(),
                           nd.out_bias.data(), out_ref(b));
        });
        break;
      }
    }
  }
}

NodeOutput Model::Impl::read_value(const Plan& p, uint8_t* base, int node, int batch) const {
  const Node& nd = nodes[node];
  const ValueInfo& v = nd.out;
  NodeOutput o;
  o.node = nd.name;
  o.batch = batch;
  o.channels = v.c;
  o.height = v.h;
  o.width = v.w;
  o.codes = v.codes;
  o.bits = v.bits;
  o.alpha = v.alpha;
  o.scale = v.scale;
  const size_t hw = static_cast<size_t>(v.h) * v.w, per = static_cast<size_t>(v.elements());
  o.values.resize(per * batch);
  if (v.codes) o.code_values.resize(per * batch);
  for (int b = 0; b < batch; ++b) {
    const void* src = value_ptr(p, base, node, batch, b);
    for (int c = 0; c < v.c; ++c)
      for (size_t i = 0; i < hw; ++i) {
        const size_t dst = b * per + c * hw + i, s = i * v.c + c;
        if (v.codes) {
          const uint8_t a = static_cast<const uint8_t*>(src)[s];
          o.code_values[dst] = a;
          o.values[dst] = static_cast<float>(a) * v.scale;
        } else {
          o.values[dst] = static_cast<const float*>(src)[s];
        }
      }
  }
  return o;
}

// ================================================================ Model

Model::Model() : impl_(std::make_unique<Impl>()) {}
Model::Model(Model&&) noexcept = default;
Model& Model::operator=(Model&&) noexcept = default;
Model::~Model() = default;

Model Model::load_from_memory(const uint8_t* data, size_t size, const std::string& name) {
  Model m;
  m.impl_->file = name;
  try {
    m.impl_->parse(data, size);
  } catch (const FormatError&) {
    throw;
  } catch (const json::exception& e) {
    throw FormatError(name + ": malformed header: " + e.what());
  } catch (const std::bad_alloc&) {
    throw FormatError(name + ": out of memory while loading (corrupt sizes?)");
  } catch (const std::length_error& e) {
    throw FormatError(name + ": invalid size: " + e.what());
  }
  return m;
}

Model Model::load(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) throw FormatError(path + ": cannot open file");
  f.seekg(0, std::ios::end);
  const std::streamoff n = f.tellg();
  if (n < 0) throw FormatError(path + ": cannot read file size");
  f.seekg(0, std::ios::beg);
  std::vector<uint8_t> bytes(static_cast<size_t>(n));
  if (n > 0 && !f.read(reinterpret_cast<char*>(bytes.data()), n)) {
    throw FormatError(path + ": read failed");
  }
  return load_from_memory(bytes.data(), bytes.size(), path);
}

std::vector<float> Model::run(const float* pixels, int batch) {
  if (batch < 1) throw std::invalid_argument("Model::run: batch must be >= 1");
  Impl& m = *impl_;
  if (m.threads > 1 && batch >= 2 * m.threads) {
    // Large batches: each thread runs the whole network on its own slice of
    // images (no barrier per layer, activations stay in its cache); results
    // are the same image by image, the kernels being per image.
    const int slices = m.threads;
    const size_t in_per_image =
        static_cast<size_t>(input_channels()) * input_height() * input_width();
    const int classes = this->classes();
    std::vector<float> logits(static_cast<size_t>(batch) * classes);
    m.slice_arenas.resize(slices);
    m.pool->parallel_for(slices, [&](int t) {
      const int b0 = static_cast<int>(static_cast<int64_t>(batch) * t / slices);
      const int b1 = static_cast<int>(static_cast<int64_t>(batch) * (t + 1) / slices);
      ThreadPool inline_pool(1);
      uint8_t* base = Impl::prepare_in(m.slice_arenas[t], m.plan, b1 - b0);
      m.execute(m.plan, base, pixels + in_per_image * b0, b1 - b0, inline_pool);
      const std::vector<float> part = m.read_value(m.plan, base, m.output, b1 - b0).values;
      std::copy(part.begin(), part.end(), logits.begin() + static_cast<size_t>(b0) * classes);
    });
    return logits;
  }
  uint8_t* base = m.prepare(m.plan, batch);
  m.execute(m.plan, base, pixels, batch, *m.pool);
  return m.read_value(m.plan, base, m.output, batch).values;
}

NodeOutput Model::debug_output(const std::string& node, const float* pixels, int batch) {
  if (batch < 1) throw std::invalid_argument("Model::debug_output: batch must be >= 1");
  Impl& m = *impl_;
  int id = -1;
  for (size_t i = 0; i < m.nodes.size(); ++i)
    if (m.nodes[i].name == node) id = static_cast<int>(i);
  if (id < 0) throw FormatError(m.file + ": no node named '" + node + "'");
  uint8_t* base = m.prepare(m.debug_plan, batch);
  m.execute(m.debug_plan, base, pixels, batch, *m.pool);
  return m.read_value(m.debug_plan, base, id, batch);
}

int Model::classes() const {
  return static_cast<int>(impl_->nodes[impl_->output].out.elements());
}
int Model::input_channels() const {
  return impl_->nodes[0].out.c;
}
int Model::input_height() const {
  return impl_->nodes[0].out.h;
}
int Model::input_width() const {
  return impl_->nodes[0].out.w;
}
const std::vector<std::string>& Model::class_names() const {
  return impl_->class_names;
}
std::string Model::model_name() const {
  return metadata("model");
}
std::string Model::metadata(const std::string& key) const {
  auto it = impl_->metadata.find(key);
  return it == impl_->metadata.end() ? std::string() : it->second;
}
std::vector<std::string> Model::node_names() const {
  std::vector<std::string> v;
  for (const auto& n : impl_->nodes) v.push_back(n.name);
  return v;
}
size_t Model::file_bytes() const {
  return impl_->file_bytes;
}
size_t Model::weight_bytes() const {
  return impl_->weight_bytes;
}
size_t Model::activation_bytes_per_image() const {
  return impl_->plan.total;
}
void Model::set_threads(int n) {
  if (n < 1) n = 1;
  if (n == impl_->threads) return;
  impl_->pool = std::make_unique<ThreadPool>(n);
  impl_->threads = n;
}
int Model::threads() const {
  return impl_->threads;
}
std::string Model::isa() const {
  return impl_->qk->name;
}

std::string Model::describe() const {
  const Impl& m = *impl_;
  std::ostringstream s;
  auto shape = [](const ValueInfo& v) {
    return "[" + std::to_string(v.c) + "," + std::to_string(v.h) + "," + std::to_string(v.w) + "]";
  };
  auto type = [](const ValueInfo& v) {
    return v.codes ? "u" + std::to_string(v.bits) + "(alpha=" + fmt_float(v.alpha) +
                         ",scale=" + fmt_float(v.scale) + ")"
                   : std::string("f32");
  };
  s << "model: " << (model_name().empty() ? "?" : model_name()) << "  file: " << m.file
    << "  format_version: " << metadata("format_version") << "  producer: " << metadata("producer")
    << "\n";
  s << "nodes: " << m.nodes.size() << "  file bytes: " << m.file_bytes
    << "  weight bytes: " << m.weight_bytes << "  classes: " << classes()
    << "  output: " << m.nodes[m.output].name << "  isa: " << m.qk->name
    << "  buffer bytes/image: " << m.plan.total << "\n";
  for (size_t i = 0; i < m.nodes.size(); ++i) {
    const Node& n = m.nodes[i];
    s << "  " << i << " " << n.name << " " << op_name(n.op) << " (";
    for (size_t j = 0; j < n.inputs.size(); ++j) {
      const Node& src = m.nodes[n.inputs[j]];
      s << (j ? ", " : "") << src.name << " " << shape(src.out) << " " << type(src.out);
    }
    s << ") -> " << shape(n.out) << " " << type(n.out);
    if (!n.out.codes && n.spec.act != FloatAct::kNone) {
      s << (n.spec.act == FloatAct::kRelu ? " relu" : " clip(" + fmt_float(n.spec.alpha) + ")");
    }
    if (n.op == Op::kConv || n.op == Op::kLinear) {
      const k::ConvGeom& g = n.geom;
      if (n.op == Op::kConv) {
        s << " k" << g.kh << "x" << g.kw << " s" << g.sh << "," << g.sw << " p" << g.ph << ","
          << g.pw;
        if (g.groups > 1) s << " g" << g.groups;
      }
      s << " w="
        << (n.w_codes ? "u" + std::to_string(n.wbits) + "(w_scale=" + fmt_float(n.w_scale) + ")"
                      : std::string("f32"))
        << " path=" << (n.integer_path ? "int" : "float")
        << " weight_bytes=" << n.weight_file_bytes;
      if (n.has_residual) {
        s << " residual(stride=" << n.res_stride << ",pad_channels=" << n.res_pad << ")";
      }
      float mn = 0, mx = 0;
      if (!n.out_scale.empty()) {
        mn = *std::min_element(n.out_scale.begin(), n.out_scale.end());
        mx = *std::max_element(n.out_scale.begin(), n.out_scale.end());
      }
      s << " out_scale=[" << fmt_float(mn) << ".." << fmt_float(mx) << "]";
    } else if (n.op == Op::kMaxPool || n.op == Op::kAvgPool) {
      s << " k" << n.pool.kh << "x" << n.pool.kw << " s" << n.pool.sh << "," << n.pool.sw << " p"
        << n.pool.ph << "," << n.pool.pw;
    }
    s << "\n";
  }
  return s.str();
}

}  // namespace pactq::rt
