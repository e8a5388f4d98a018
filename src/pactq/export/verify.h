// Verification: the runtime's .pqm against the model it came from, on real
// data (`pactq export --verify`).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "pactq/export/export_plan.h"
#include "pactq/models/model.h"

namespace pactq::rt {
class Model;
}

namespace pactq::data {
class DataLoader;
}

namespace pactq::export_ {

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
// input node. Codes are compared on the first `code_images` images. Each
// batch costs two runtime passes: run() (the logits) and one trace (every
// node's value, rt::Model::trace).
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
