// ReferenceExecutor: the .pqm semantics (docs/format.md) in LibTorch, run on
// an ExportPlan's runtime nodes (rt::ConvNode, ...), not on the model's
// modules. The fake-quantized model differs from the integer runtime by float
// noise (its convs sum in float32 in another order, BN is a separate op), so a
// code right at a rounding boundary may flip and the flips spread. This
// executor computes what the file says, with no such noise on the integer
// path: given the same inputs, a difference from the runtime is a runtime bug.
//
//   ReferenceExecutor ref(plan);
//   std::vector<at::Tensor> v = ref.run(pixels);       // every node, chained
//   at::Tensor y = ref.run_node(i, runtime_inputs);    // one node on given inputs
//
// Values: one float32 tensor [N, C, H, W] per node (linear, flatten, global
// pool: [N, C, 1, 1]); a CODES value holds the codes 0..n themselves.
//
// Exactness, given the same input values as the runtime (eval, no grad):
//   bit-identical: the integer path of conv/linear (codes and weights 2q - n_w
//     as float tensors through at::conv2d / at::linear: every partial sum is an
//     integer of magnitude <= K * n_x * n_w < 2^24, checked from the shapes, so
//     no summation order can round; float64 when the bound is larger), the
//     epilogue (at::mul then at::add in float32, never fused), the residual,
//     the requant, the input normalisation, pools, add, affine and flatten
//     (float sums in the runtime's order).
//   NOT bit-identical: the float path (float weights or a FLOAT input: the fp
//     first/last layers). at::conv2d / at::linear sum in their own order, so a
//     pre-activation within an ulp of a rounding boundary may round the other
//     way. exact(i) is false for exactly these nodes.
#pragma once
#include <ATen/ATen.h>

#include <cstddef>
#include <string>
#include <vector>

#include "pactq/export/export_plan.h"

namespace pactq::export_ {

class ReferenceExecutor {
 public:
  explicit ReferenceExecutor(const ExportPlan& plan);
  // `nodes` in execution order, nodes[0] the input node; `output` names the
  // output node (empty: the last). Throws std::invalid_argument naming the
  // node for unknown inputs or inconsistent shapes.
  explicit ReferenceExecutor(std::vector<ExportPlan::Node> nodes, const std::string& output = {});
  ~ReferenceExecutor();
  ReferenceExecutor(ReferenceExecutor&&) noexcept;
  ReferenceExecutor& operator=(ReferenceExecutor&&) noexcept;

  size_t size() const;
  const std::string& name(size_t i) const;
  size_t index(const std::string& name) const;  // throws std::out_of_range naming it
  size_t output_index() const;
  // Indices of the node's inputs, in the order run_node takes them (conv and
  // linear: x, then the residual).
  const std::vector<size_t>& inputs(size_t i) const;
  const ValueType& type(size_t i) const;
  // False for the float-path conv/linear nodes (see above).
  bool exact(size_t i) const;

  // pixels: [N, C, H, W] float in [0, 1]. Every node's value, in node order.
  std::vector<at::Tensor> run(const at::Tensor& pixels) const;
  // The output node's values as [N, F].
  at::Tensor logits(const at::Tensor& pixels) const;
  // Node i on the given values of inputs(i) (the input node takes the pixels).
  at::Tensor run_node(size_t i, const std::vector<at::Tensor>& in) const;

 private:
  struct Step;
  std::vector<Step> steps_;
  size_t output_ = 0;
};

}  // namespace pactq::export_
