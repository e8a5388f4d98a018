// The loaded form of a .pqm file: validated nodes with packed weights, the
// buffer plans and the metadata. Built once by the loader, never changed
// afterwards, so any number of threads may run it at once (each with its own
// buffers, runtime/execution_context.h). Internal to the runtime.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "pactq/runtime/graph.h"
#include "pactq/runtime/kernels/kernels.h"

namespace pactq::rt::detail {

enum class Op { kInput, kConv, kLinear, kMaxPool, kAvgPool, kGap, kFlatten, kAdd, kAffine };

// Type and shape of a node's output (per image).
struct ValueInfo {
  int c = 0, h = 0, w = 0;
  bool codes = false;
  int bits = 0;
  float alpha = 0.f, scale = 0.f;  // codes: scale = alpha / n
  int64_t elements() const { return int64_t{c} * h * w; }
  size_t bytes() const { return static_cast<size_t>(elements()) * (codes ? 1 : 4); }
};

struct Node {
  std::string name;
  Op op = Op::kInput;
  int id = 0;               // index in CompiledGraph::nodes
  std::vector<int> inputs;  // node indices, all < id
  ValueInfo out;
  OutputSpec spec;  // requested output (conv, linear, avg pool, gap, add, affine)
  // input
  std::vector<float> mean, stdev;
  // conv / linear / pools
  kernels::ConvGeom geom;
  kernels::PoolGeom pool{};
  bool integer_path = false;
  bool w_codes = false;
  int wbits = 0;
  float w_scale = 1.f;
  size_t weight_file_bytes = 0;
  kernels::PackedQConv qconv;
  kernels::PackedFConv fconv;
  std::vector<float> out_scale, out_bias;  // conv/linear; affine scale/bias
  bool has_residual = false;
  int res_stride = 1, res_pad = 0;
};

// Where each node's value lives in an arena of `batch` images: node i's
// image b at offset[i] * batch + stride[i] * b (runtime/buffer_plan.h).
struct BufferPlan {
  std::vector<size_t> offset;  // per node, per-image units
  std::vector<size_t> stride;  // per node: bytes per image (padded)
  size_t total = 0;            // bytes per image
};

struct CompiledGraph {
  std::string file;  // names the model in error messages
  size_t file_bytes = 0, weight_bytes = 0;
  std::map<std::string, std::string> metadata;
  std::vector<std::string> class_names;
  std::vector<Node> nodes;  // topological order, nodes[0] the input
  int output = 0;
  const kernels::KernelSet* kernels = nullptr;  // the set the weights were packed for
  BufferPlan plan;                              // run(): buffers reused once a value is dead
  BufferPlan trace_plan;                        // trace(): every value kept

  // Index of the node named `name`, or -1.
  int find(const std::string& name) const {
    for (size_t i = 0; i < nodes.size(); ++i)
      if (nodes[i].name == name) return static_cast<int>(i);
    return -1;
  }
};

}  // namespace pactq::rt::detail
