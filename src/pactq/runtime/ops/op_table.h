// The op table: one entry per .pqm op {name, parse, run}. An op's file
// (ops/conv_ops.cpp, ops/pool_ops.cpp, ops/value_ops.cpp) holds its entry and
// its writer serialiser (graph.h struct -> node JSON + tensors) side by side,
// so the op's name and fields are spelt in one place for the writer, the
// loader and the executor. Internal to the runtime.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "pactq/runtime/compiled_graph.h"
#include "pactq/runtime/json_fields.h"
#include "pactq/runtime/thread_pool.h"

namespace pactq::rt::detail {

// One tensor entry of the file header, as the loader sees it.
struct TensorInfo {
  std::string dtype;
  std::vector<int64_t> shape;
  uint64_t begin = 0, end = 0;  // byte range in the data section
  int64_t numel = 0;
};

// Limits on what a node may declare (a corrupt file must not allocate terabytes).
constexpr int64_t kMaxDim = 1 << 20;
constexpr int64_t kMaxElements = int64_t{1} << 28;  // per image per value
constexpr int kMaxKernel = 64;

// What an op's parser sees of one node: its JSON, the file's tensors and the
// nodes before it. The parser fills `node` (shapes, packed weights) and fails
// with a message naming the node.
class NodeParser : public JsonFields {
 public:
  NodeParser(JsonFields where, Node& node, const json& attrs, const json& tensors,
             const json& node_json, const std::map<std::string, TensorInfo>& infos,
             const uint8_t* blob, const std::vector<Node>& earlier,
             const kernels::KernelSet& kernels, size_t& weight_bytes)
      : JsonFields(std::move(where)),
        node(node),
        attrs(attrs),
        tensors(tensors),
        node_json(node_json),
        infos(infos),
        blob(blob),
        earlier(earlier),
        kernels(kernels),
        weight_bytes(weight_bytes) {}

  Node& node;
  const json& attrs;
  const json& tensors;    // role -> tensor name
  const json& node_json;  // the whole node object
  const std::map<std::string, TensorInfo>& infos;
  const uint8_t* blob;  // the data section
  const std::vector<Node>& earlier;
  const kernels::KernelSet& kernels;  // packs the weights
  size_t& weight_bytes;               // counts the tensor bytes the graph uses

  const ValueInfo& input(size_t i) const { return earlier[node.inputs[i]].out; }
  const std::string& input_name(size_t i) const { return earlier[node.inputs[i]].name; }
  // Fails unless the shape is positive and within the limits.
  void check_value(const ValueInfo& v) const;
  // The node's "output" field.
  OutputSpec output() const;
  // The tensor of role `role` (its name in *name).
  const TensorInfo& tensor(const char* role, std::string* name) const;
  // The F32 tensor of role `role` with exactly `count` elements (counted in weight_bytes).
  std::vector<float> f32_tensor(const char* role, int64_t count) const;
};

// The output type a spec gives a [c, h, w] value.
ValueInfo value_of(const OutputSpec& s, int c, int h, int w);

// One op's run over a batch, into the caller's arena.
struct RunArgs {
  const CompiledGraph& graph;
  const BufferPlan& plan;
  uint8_t* base;  // 64-byte aligned arena of plan.total * batch bytes (+ slack)
  int batch;
  const float* pixels;  // the network input, [batch, C, H, W]
  ThreadPool& pool;

  void* value(int node, int image) const {
    return base + plan.offset[node] * static_cast<size_t>(batch) +
           plan.stride[node] * static_cast<size_t>(image);
  }
  kernels::TensorRef input_ref(const Node& nd, int which, int image) const;
  kernels::OutputRef output_ref(const Node& nd, int image) const;
};

struct OpDef {
  Op op;
  const char* name;  // in the file's "op" field
  size_t min_inputs, max_inputs;
  void (*parse)(NodeParser& p);  // inputs already resolved and counted
  void (*run)(const Node& node, const RunArgs& args);
};

const OpDef& op_def(Op op);
const OpDef* find_op(const std::string& name);  // nullptr when unknown
std::string known_op_names();                   // "input, conv2d, ..."

// The writer's form of a node: its JSON object and its tensors.
struct TensorRecord {
  std::string name, dtype;  // dtype: "F32", "U8"
  std::vector<int64_t> shape;
  std::vector<uint8_t> bytes;
};
struct NodeRecord {
  json node;
  std::vector<TensorRecord> tensors;
};
TensorRecord f32_record(const std::string& name, const std::vector<float>& values);
// The "output" field (the inverse of NodeParser::output).
json output_json(const OutputSpec& spec);
// Throws FormatError("ModelWriter: node '<node>': <what>") unless ok.
void writer_require(bool ok, const std::string& node, const std::string& what);

// Serialisers, beside each op's parser.
NodeRecord write_node(const InputNode& n);
NodeRecord write_node(const ConvNode& n);
NodeRecord write_node(const LinearNode& n);
NodeRecord write_node(const PoolNode& n);
NodeRecord write_node(const GlobalAvgPoolNode& n);
NodeRecord write_node(const FlattenNode& n);
NodeRecord write_node(const AddNode& n);
NodeRecord write_node(const AffineNode& n);

// The entries, defined in the ops' files.
extern const OpDef kInputOp, kConv2dOp, kLinearOp, kMaxPoolOp, kAvgPoolOp, kGlobalAvgPoolOp,
    kFlattenOp, kAddOp, kAffineOp;

}  // namespace pactq::rt::detail
