// The exporter: from a trained (fake-quantized) LibTorch model of the zoo to a
// .pqm file for the integer runtime (docs/format.md).
//
//   ExportPlan plan = ExportPlan::build(*model, mean, std);   // walks the typed model
//   plan.write("model.pqm", metadata);                       // ModelWriter, atomic
//
// The plan is a list of runtime nodes in execution order. Each node also
// carries how LibTorch computes the same value with the model's own modules
// (conv -> bn -> [+ residual] -> act), so trace() runs the model layer by layer
// and yields every node's value: the reference for the runtime's intermediate
// activation codes (verify()).
//
// Folding (the runtime's two paths, runtime/graph.h):
//   integer path (codes weights, codes input):
//       out_scale = gamma / sigma * (w_scale / n_w) * (alpha_in / n_in)
//   float path (float weights or float input):
//       out_scale = gamma / sigma
//   out_bias = beta - gamma * mu / sigma + gamma / sigma * conv_bias
//   sigma = sqrt(running_var + eps) (eval statistics); computed in double, stored float32.
// Each PactReLU becomes the output spec of the node that feeds it: quantized ->
// CODES(bits, alpha) with alpha the float32 parameter itself; full precision ->
// FLOAT clip(alpha); relu -> FLOAT relu. Pre-activation BN + act after a
// residual sum become an `affine` node.
#pragma once
#include <ATen/ATen.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "pactq/models/model.h"
#include "pactq/runtime/graph.h"

namespace pactq::rt {
class ModelWriter;
class Model;
}  // namespace pactq::rt

namespace pactq::data {
class DataLoader;
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

  // Walks a zoo model (dynamic_cast on its class and blocks). Puts the model
  // in eval mode. mean/std: the normalisation the input node records (one
  // value per input channel; empty = 0 / 1). Throws std::invalid_argument for
  // unsupported models or settings.
  static ExportPlan build(models::QuantModel& model, std::vector<float> mean = {},
                          std::vector<float> std = {});

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

// What export_checkpoint did.
struct ExportReport {
  std::string path;
  size_t file_bytes = 0;
  int64_t fp32_weight_bytes = 0;
  size_t nodes = 0;
  std::string model;
  std::string precision;
  std::vector<std::string> warnings;  // e.g. class names left out: the dataset was unreadable
};

// Rebuilds the model from a pactq training checkpoint and writes the .pqm.
// Errors (missing/corrupt checkpoint, unsupported model) name the file. The
// class names come from the checkpoint's dataset; when it cannot be read
// (exporting on a machine without the data) they are left out and
// ExportReport::warnings says why.
ExportReport export_checkpoint(const std::string& checkpoint, const std::string& out_path);

// Runtime vs two LibTorch references on real data:
//   the fake-quantized model (the model's own modules: what training saw; its
//     float32 convs and separate BN put a few codes on the other side of a
//     rounding boundary, and those flips spread through later layers);
//   the deploy-exact reference (ReferenceExecutor: the .pqm semantics on the
//     plan's nodes; exact on the integer path), which checks the runtime
//     itself, independent of that float noise.
struct VerifyResult {
  int64_t images = 0;
  int64_t agree = 0;  // same argmax as the fake-quantized model
  int64_t torch_correct = 0, runtime_correct = 0;
  double agreement = 0;                           // percent of images with the same prediction
  double torch_top1 = 0, runtime_top1 = 0;        // percent
  int64_t code_images = 0;                        // images used for the code comparison
  int64_t codes_compared = 0, codes_matched = 0;  // the reference counts the same codes
  double code_match = 0;      // percent of intermediate activation codes equal (rounded down;
                              // NaN when no code was compared)
  double max_logit_diff = 0;  // max |runtime - torch| over all logits

  // Runtime vs the deploy-exact reference, on the same images. Predictions and
  // logits: the reference run end to end. Codes: each node run on the
  // runtime's values of its inputs (so a float-path difference in one node
  // does not spread), and end to end (`ref_chain_*`).
  int64_t ref_agree = 0;
  double ref_agreement = 0;
  double ref_max_logit_diff = 0;        // end to end
  double ref_output_logit_diff = 0;     // the output node on the runtime's inputs
  int64_t ref_codes_matched = 0;        // of codes_compared
  double ref_code_match = 0;            // as code_match
  int64_t ref_chain_codes_matched = 0;  // of codes_compared
  double ref_chain_code_match = 0;      // as code_match
  double seconds = 0;
  struct NodeMatch {
    std::string node;
    int64_t compared = 0;     // codes of this node (both comparisons count the same ones)
    int64_t matched = 0;      // equal to the fake-quantized model's
    int64_t ref_matched = 0;  // equal to the reference's, node on runtime inputs
    bool ref_exact = true;    // false: float-path node, the reference is not bit-exact there
    // Percent matched, rounded down to 1e-4: 100 only when every code matches;
    // NaN when nothing was compared.
    double match_percent() const;
    double ref_match_percent() const;
  };
  std::vector<NodeMatch> per_node;
  std::string summary() const;
};

// `pixels` yields batches in [0,1] (a loader with mean 0, std 1); the LibTorch
// model sees (p - mean) / std computed in float32 exactly like the runtime's
// input node. Codes are compared on the first `code_images` images (each
// compared node and each input of one costs a runtime pass over them; the
// reference's output node on the runtime's inputs costs a pass per batch).
VerifyResult verify(models::QuantModel& model, const ExportPlan& plan, rt::Model& runtime,
                    data::DataLoader& pixels, const std::vector<float>& mean,
                    const std::vector<float>& std, int64_t code_images = 256);

// Rebuilds the checkpoint's model, loads `pqm`, and verifies on the first
// `images` test images of the checkpoint's data set (data_dir overrides the
// stored one when non-empty).
VerifyResult verify_checkpoint(const std::string& checkpoint, const std::string& pqm,
                               int64_t images, const std::string& data_dir = {},
                               int64_t code_images = 256, int threads = 0);

}  // namespace pactq::export_
