#include "pactq/runtime/loader.h"

#include <algorithm>
#include <new>
#include <stdexcept>
#include <utility>
#include <vector>

#include "pactq/runtime/buffer_plan.h"
#include "pactq/runtime/json_fields.h"
#include "pactq/runtime/ops/op_table.h"

namespace pactq::rt::detail {

namespace {

constexpr uint64_t kMaxHeaderBytes = 100ull << 20;
constexpr int kMaxNodes = 100000;

class Loader {
 public:
  Loader(CompiledGraph& g, const kernels::KernelSet& k) : g_(g), kernels_(k) {}
  void load(const uint8_t* data, size_t size);

 private:
  [[noreturn]] void fail(const std::string& what) const {
    throw FormatError(g_.file + ": " + what);
  }
  const std::string& meta(const char* key) const;
  void read_metadata(const json& header);
  void read_tensors(const json& header, uint64_t data_size);
  void read_class_names();
  void read_graph();
  void read_node(const json& jn, size_t index, std::map<std::string, int>& by_name);

  CompiledGraph& g_;
  const kernels::KernelSet& kernels_;
  std::map<std::string, TensorInfo> tensors_;
  const uint8_t* blob_ = nullptr;
};

void Loader::load(const uint8_t* data, size_t size) {
  g_.file_bytes = size;
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
  blob_ = data + 8 + n;

  json header;
  try {
    header = json::parse(data + 8, data + 8 + n);
  } catch (const json::exception& e) {
    fail(std::string("header is not valid JSON: ") + e.what());
  }
  if (!header.is_object()) fail("header JSON is not an object");
  read_metadata(header);  // format checks come before anything else
  read_tensors(header, size - 8 - n);
  read_class_names();
  read_graph();
  g_.kernels = &kernels_;
  g_.plan = plan_buffers(g_.nodes, g_.output, true);
  g_.trace_plan = plan_buffers(g_.nodes, g_.output, false);
}

const std::string& Loader::meta(const char* key) const {
  auto it = g_.metadata.find(key);
  if (it == g_.metadata.end()) fail(std::string("__metadata__ lacks '") + key + "'");
  return it->second;
}

void Loader::read_metadata(const json& header) {
  auto mit = header.find("__metadata__");
  if (mit == header.end()) fail("missing __metadata__ (not a .pqm file)");
  if (!mit->is_object()) fail("__metadata__ must be an object");
  for (auto it = mit->begin(); it != mit->end(); ++it) {
    if (!it->is_string()) fail("__metadata__ value '" + it.key() + "' must be a string");
    g_.metadata[it.key()] = it->get<std::string>();
  }
  if (meta("format") != "pqm") fail("__metadata__ format is '" + meta("format") + "', not 'pqm'");
  if (meta("format_version") != "1") {
    fail("unsupported format_version '" + meta("format_version") + "' (this reader knows 1)");
  }
}

void Loader::read_tensors(const json& header, uint64_t data_size) {
  for (auto it = header.begin(); it != header.end(); ++it) {
    if (it.key() == "__metadata__") continue;
    const JsonFields c{g_.file, "tensor '" + it.key() + "'"};
    const json& t = *it;
    if (!t.is_object()) c.fail("entry must be an object");
    TensorInfo ti;
    ti.dtype = c.get_string(t, "dtype");
    int64_t esize = 0;
    if (ti.dtype == "U8") {
      esize = 1;
    } else if (ti.dtype == "F32" || ti.dtype == "I32") {
      esize = 4;
    } else {
      c.fail("unsupported dtype '" + ti.dtype + "' (expected U8, F32 or I32)");
    }
    const json& sh = c.member(t, "shape");
    if (!sh.is_array() || sh.size() > 8) c.fail("shape must be an array of at most 8 dims");
    ti.numel = 1;
    for (const json& d : sh) {
      const int64_t v = c.as_int(d, "shape dim", 0, int64_t{1} << 40);
      ti.shape.push_back(v);
      if (v != 0 && ti.numel > (int64_t{1} << 40) / v) c.fail("shape too large");
      ti.numel *= v;
    }
    const json& off = c.member(t, "data_offsets");
    if (!off.is_array() || off.size() != 2) c.fail("data_offsets must be [begin, end]");
    const int64_t b = c.as_int(off[0], "data_offsets begin", 0, INT64_MAX);
    const int64_t e = c.as_int(off[1], "data_offsets end", 0, INT64_MAX);
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
    tensors_[it.key()] = ti;
  }
  std::vector<std::pair<uint64_t, uint64_t>> spans;
  for (const auto& kv : tensors_)
    if (kv.second.end > kv.second.begin) spans.emplace_back(kv.second.begin, kv.second.end);
  std::sort(spans.begin(), spans.end());
  for (size_t i = 1; i < spans.size(); ++i) {
    if (spans[i].first < spans[i - 1].second) {
      fail("tensor data ranges overlap at offset " + std::to_string(spans[i].first));
    }
  }
}

// Optional descriptive metadata: "classes", a JSON array of strings.
void Loader::read_class_names() {
  auto it = g_.metadata.find("classes");
  if (it == g_.metadata.end()) return;
  json cl;
  try {
    cl = json::parse(it->second);
  } catch (const json::exception& e) {
    fail(std::string("__metadata__ classes is not valid JSON: ") + e.what());
  }
  if (!cl.is_array()) fail("__metadata__ classes must be a JSON array of strings");
  for (const json& s : cl) {
    if (!s.is_string()) fail("__metadata__ classes must be a JSON array of strings");
    g_.class_names.push_back(s.get<std::string>());
  }
}

void Loader::read_graph() {
  json graph;
  try {
    graph = json::parse(meta("graph"));
  } catch (const json::exception& e) {
    fail(std::string("__metadata__ graph is not valid JSON: ") + e.what());
  }
  const JsonFields gc{g_.file, "graph"};
  if (!graph.is_object()) gc.fail("must be a JSON object");
  const json& jnodes = gc.member(graph, "nodes");
  if (!jnodes.is_array() || jnodes.empty()) gc.fail("'nodes' must be a non-empty array");
  if (jnodes.size() > static_cast<size_t>(kMaxNodes)) gc.fail("too many nodes");
  std::map<std::string, int> by_name;
  for (size_t i = 0; i < jnodes.size(); ++i) read_node(jnodes[i], i, by_name);
  if (graph.contains("output")) {
    const std::string out = gc.get_string(graph, "output");
    auto it = by_name.find(out);
    if (it == by_name.end()) gc.fail("output '" + out + "' is not a node");
    g_.output = it->second;
  } else {
    g_.output = static_cast<int>(g_.nodes.size()) - 1;
  }
}

// The checks every op shares (name, op, inputs, position); the op's own
// parser does the rest.
void Loader::read_node(const json& jn, size_t index, std::map<std::string, int>& by_name) {
  JsonFields c{g_.file, "node #" + std::to_string(index)};
  if (!jn.is_object()) c.fail("must be an object");
  Node nd;
  nd.id = static_cast<int>(index);
  nd.name = c.get_string(jn, "name");
  if (nd.name.empty()) c.fail("empty name");
  c.where = "node '" + nd.name + "'";
  if (by_name.count(nd.name)) c.fail("duplicate node name");
  const std::string op = c.get_string(jn, "op");
  const OpDef* def = find_op(op);
  if (def == nullptr) c.fail("unknown op '" + op + "'");
  nd.op = def->op;

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
  const json& jin = c.member(jn, "inputs");
  if (!jin.is_array()) c.fail("'inputs' must be an array");
  for (const json& s : jin) {
    if (!s.is_string()) c.fail("inputs must be node names");
    auto it = by_name.find(s.get<std::string>());
    if (it == by_name.end()) c.fail("input '" + s.get<std::string>() + "' is not an earlier node");
    nd.inputs.push_back(it->second);
  }
  if (nd.inputs.size() < def->min_inputs || nd.inputs.size() > def->max_inputs) {
    c.fail(std::string(def->name) + " takes " + std::to_string(def->min_inputs) +
           (def->max_inputs != def->min_inputs ? ".." + std::to_string(def->max_inputs)
                                               : std::string()) +
           " inputs, got " + std::to_string(nd.inputs.size()));
  }
  if (nd.op == Op::kInput && index != 0) c.fail("the input node must be the first node");
  if (nd.op != Op::kInput && index == 0) c.fail("the first node must be the input node");

  NodeParser p(c, nd, *attrs, *jt, jn, tensors_, blob_, g_.nodes, kernels_, g_.weight_bytes);
  def->parse(p);
  by_name[nd.name] = nd.id;
  g_.nodes.push_back(std::move(nd));
}

}  // namespace

std::shared_ptr<const CompiledGraph> load_graph(const uint8_t* data, size_t size,
                                                const std::string& name,
                                                const kernels::KernelSet& kernels) {
  auto g = std::make_shared<CompiledGraph>();
  g->file = name;
  try {
    Loader(*g, kernels).load(data, size);
  } catch (const FormatError&) {
    throw;
  } catch (const json::exception& e) {
    throw FormatError(name + ": malformed header: " + e.what());
  } catch (const std::bad_alloc&) {
    throw FormatError(name + ": out of memory while loading (corrupt sizes?)");
  } catch (const std::length_error& e) {
    throw FormatError(name + ": invalid size: " + e.what());
  }
  return g;
}

}  // namespace pactq::rt::detail
