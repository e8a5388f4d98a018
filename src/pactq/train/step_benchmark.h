// Training-step timing for `pactq bench train`: float and quantized models
// stepped alternately in one process on the same synthetic batch, so machine
// noise hits both alike; medians and their ratio are what to quote.
#pragma once
#include <string>
#include <vector>

#include "pactq/train/config.h"

namespace pactq::train {

struct StepTiming {
  std::string label;
  std::vector<double> seconds;  // one per timed step
  double median() const;
};

struct StepBenchmarkOptions {
  int batch_size = 128;
  int warmup = 2;
  int steps = 10;
  int threads = 0;
  std::string device = "auto";  // --device spec (train/device.h); CUDA steps end in a sync
  std::string amp = "off";      // --amp (train/device.h), as the trainer applies it
  bool channels_last = false;   // --channels-last, likewise
  bool cuda_graph = false;      // --cuda-graph, likewise (CUDA only)
};

// Times optimiser steps (forward, loss, backward, SGD step, alpha guard) of
// each config's model on one random batch, interleaved variant by variant.
std::vector<StepTiming> benchmark_training_steps(const std::vector<TrainConfig>& variants,
                                                 const StepBenchmarkOptions& options);

// Peak bytes allocated during one training step (forward + backward +
// update) beyond what was live before it: the activations and masks autograd
// keeps for backward dominate it. Measured by wrapping LibTorch's CPU
// allocator with a counting one for the duration of the call.
struct StepMemory {
  std::string label;
  int64_t peak_bytes = 0;
  double peak_mb() const;
};
std::vector<StepMemory> measure_step_memory(const std::vector<TrainConfig>& variants,
                                            int batch_size);

}  // namespace pactq::train
