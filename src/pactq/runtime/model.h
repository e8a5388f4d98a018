// pactq::rt::Model: a loaded .pqm file (docs/format.md), validated
// completely, weights packed and buffers planned once. No LibTorch.
//
//   auto m = pactq::rt::Model::load("model.pqm");   // throws IoError or FormatError
//   m.set_threads(2);
//   std::vector<float> logits = m.run(pixels, batch); // pixels: [batch, C, H, W] in [0,1]
//
// A Model's weights and plan never change after loading. The buffers a run
// needs live in an ExecutionContext: run(pixels, batch, context) is const and
// may be called from many threads at once on one Model, each thread with its
// own context (they share one copy of the weights). The two-argument run(),
// trace() and debug_output() use the Model's own context and, like any
// non-const call, must not overlap on the same Model.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "pactq/runtime/execution_context.h"
#include "pactq/runtime/graph.h"

namespace pactq::rt {

namespace detail {
struct CompiledGraph;
}

// One node's output for a batch, in logical NCHW order (debug / --verify).
struct NodeOutput {
  std::string node;
  int batch = 0, channels = 0, height = 0, width = 0;
  bool codes = false;  // CODES tensor: `code_values` holds the codes
  int bits = 0;
  float alpha = 0.f, scale = 0.f;    // codes: scale = alpha / (2^bits - 1)
  std::vector<uint8_t> code_values;  // [batch, C, H, W] when codes
  std::vector<float> values;         // [batch, C, H, W] real values (always filled)
};

// Every node's output of one pass over a batch (Model::trace): the values stay
// in the trace's own buffers and are read out per node on request.
class Trace {
 public:
  Trace(Trace&&) noexcept;
  Trace& operator=(Trace&&) noexcept;
  ~Trace();

  int batch() const { return batch_; }
  size_t size() const;  // number of nodes
  NodeOutput output(size_t node) const;
  NodeOutput output(const std::string& node) const;  // FormatError if unknown

 private:
  friend class Model;
  Trace(std::shared_ptr<const detail::CompiledGraph> graph, int batch);
  std::shared_ptr<const detail::CompiledGraph> graph_;
  std::vector<uint8_t> arena_;
  uint8_t* base_ = nullptr;
  int batch_ = 0;
};

// Where one pass over a batch spends its time, one entry per node
// (Model::profile).
struct NodeProfile {
  std::string node;
  std::string op;    // the .pqm op name: conv, linear, add, affine, max_pool, ...
  std::string path;  // conv and linear: "int" (integer kernel) or "float"; else ""
  int channels = 0, height = 0, width = 0;  // output, per image
  double seconds = 0;                       // median over the passes, for the whole batch
  double ops = 0;  // conv and linear: 2 x multiply-adds for the whole batch; else 0
};

class Model {
 public:
  // IoError if the file cannot be opened or read, FormatError if its content is wrong.
  static Model load(const std::string& path);
  // `name` is used in error messages in place of a file name.
  static Model load_from_memory(const uint8_t* data, size_t size,
                                const std::string& name = "<memory>");

  Model(Model&&) noexcept;
  Model& operator=(Model&&) noexcept;
  ~Model();

  // pixels: [batch, C, H, W] float in [0, 1]; returns the output node's real
  // values, [batch, classes()]. Safe to call concurrently with distinct contexts.
  std::vector<float> run(const float* pixels, int batch, ExecutionContext& context) const;
  // The same with the Model's own context (threads: set_threads()).
  std::vector<float> run(const float* pixels, int batch);

  // One pass that keeps every node's output (the values run() gives image by image).
  Trace trace(const float* pixels, int batch, ExecutionContext& context) const;
  Trace trace(const float* pixels, int batch);
  // The named node's output (FormatError if unknown): trace(...).output(node).
  NodeOutput debug_output(const std::string& node, const float* pixels, int batch);

  // Times every node over `reps` passes of `batch` images (after one untimed
  // pass). Nodes run one after another, the context's threads sharing each
  // node, as run() does below 2 x threads images; larger batches run() splits
  // into per-thread image chunks, so there its total is lower than the sum.
  std::vector<NodeProfile> profile(const float* pixels, int batch, int reps,
                                   ExecutionContext& context) const;
  std::vector<NodeProfile> profile(const float* pixels, int batch, int reps);

  int classes() const;  // elements of the output node per image
  int input_channels() const;
  int input_height() const;
  int input_width() const;
  const std::vector<std::string>& class_names() const;  // metadata "classes", may be empty
  std::string model_name() const;                       // metadata "model", may be empty
  std::string metadata(const std::string& key) const;   // "" when absent
  std::vector<std::string> node_names() const;
  size_t file_bytes() const;
  size_t weight_bytes() const;  // bytes of the tensors the graph uses
  // Planned activation buffer bytes per image (with liveness-based reuse).
  size_t activation_bytes_per_image() const;

  // Worker threads of the Model's own context (>= 1; default 1).
  void set_threads(int n);
  int threads() const;
  // The kernel set the model runs with, e.g. "avx2 (qconv avx2, fconv avx2, values avx2)".
  std::string isa() const;

  // The loaded graph, for the runtime's own tools (runtime/inspect.h).
  const detail::CompiledGraph& graph() const { return *graph_; }

 private:
  explicit Model(std::shared_ptr<const detail::CompiledGraph> graph);
  std::shared_ptr<const detail::CompiledGraph> graph_;
  std::unique_ptr<ExecutionContext> own_context_;
};

}  // namespace pactq::rt
