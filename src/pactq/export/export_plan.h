// ExportPlan: a model lowered to the runtime's nodes (runtime/graph.h), in
// execution order, each with how LibTorch computes the same value with the
// model's own modules. Built by export/plan_builder.h; written as a .pqm by
// add_to()/write(); run node by node by trace() (the fake-quantized values
// --verify compares the runtime's codes with) and by ReferenceExecutor (the
// deploy-exact semantics). Knows nothing of the model classes.
#pragma once
#include <ATen/ATen.h>

#include <cstdint>
#include <functional>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "pactq/runtime/graph.h"

namespace pactq::rt {
class ModelWriter;
}

namespace pactq::export_ {

// Metadata written with the model.
struct ExportMetadata {
  std::string model;                 // e.g. "resnet20"
  std::vector<std::string> classes;  // may be empty
  std::string producer = "pactq 0.1.0";
  std::string precision;  // e.g. "W4/A4 dorefa/pact, first/last fp"
  std::string source;     // source checkpoint
};

// The type of one node's output value.
struct ValueType {
  bool codes = false;
  int bits = 0;
  float alpha = 0.f;
};

class ExportPlan {
 public:
  using Node = std::variant<rt::InputNode, rt::ConvNode, rt::LinearNode, rt::PoolNode,
                            rt::GlobalAvgPoolNode, rt::FlattenNode, rt::AddNode, rt::AffineNode>;
  struct Step {
    std::string name;
    std::vector<std::string> inputs;  // node names (LibTorch values fed to `torch_fn`)
    Node node;
    ValueType out;
    std::function<at::Tensor(const std::vector<at::Tensor>&)> torch_fn;  // input: identity
  };

  const std::vector<Step>& steps() const { return steps_; }
  const std::string& output() const { return steps_.back().name; }

  // Adds every node to a writer, with the metadata.
  void add_to(rt::ModelWriter& writer, const ExportMetadata& meta) const;
  std::vector<uint8_t> serialize(const ExportMetadata& meta) const;
  // Atomic write (validated by loading it back first). Returns the file size.
  size_t write(const std::string& path, const ExportMetadata& meta) const;

  // Runs the LibTorch model node by node on normalised inputs x [N, C, H, W]
  // (eval, no grad); returns every node's value (conv: [N,C,H,W], linear,
  // flatten, global pool: [N,F]) in step order. The last is the logits and
  // equals model.forward(x).
  std::vector<std::pair<std::string, at::Tensor>> trace(const at::Tensor& x) const;

  // Bytes of the model's conv/linear/BN parameters at float32 (the size an
  // fp32 deployment would store).
  int64_t fp32_weight_bytes() const { return fp32_weight_bytes_; }

 private:
  std::vector<Step> steps_;
  int64_t fp32_weight_bytes_ = 0;
  friend class PlanBuilder;
};

}  // namespace pactq::export_
