// A trained run's weights as a .safetensors file: every parameter and buffer
// of the model (float weights, BatchNorm statistics, PACT alphas) under the
// names --init-from reads, with the training config and the input
// normalisation in the metadata. The file a shipped model's fake-quant
// figure is measured from (`pactq eval --model M --wbits .. --init-from F`).
#pragma once
#include <cstdint>
#include <string>

namespace pactq::train {

struct WeightsFileReport {
  std::string path;
  std::string model;
  int64_t tensors = 0;
  int64_t bytes = 0;
};

// Reads `checkpoint` (a .pt written by pactq train), writes `out` atomically.
WeightsFileReport write_weights_from_checkpoint(const std::string& checkpoint,
                                                const std::string& out);

}  // namespace pactq::train
