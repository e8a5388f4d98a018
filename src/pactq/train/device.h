// --device: where training, evaluation and the step benchmark run. Models are
// built and loaded on the CPU, then moved; export, the deployed evaluation and
// checkpoints always work from CPU tensors, so a GPU-trained run exports and
// evaluates anywhere.
#pragma once
#include <c10/core/Device.h>
#include <torch/nn/module.h>

#include <string>

namespace pactq::train {

// "cpu", "cuda", "cuda:N" or "auto" (CUDA device 0 when one is usable, else
// the CPU). Throws std::invalid_argument, one line naming --device, for a
// malformed spec, a CPU-only LibTorch, no visible CUDA device, or an index
// past the visible devices.
at::Device resolve_device(const std::string& spec);

// Only the syntax (what a config may store); throws like resolve_device.
void check_device_spec(const std::string& spec);

// The device of the module's first parameter or buffer (CPU if it has none).
at::Device module_device(const torch::nn::Module& module);

// Batches go through pinned host memory only when they are copied to a CUDA
// device: pinning needs a CUDA LibTorch and helps only the copy.
inline bool pin_batches_for(const at::Device& device) {
  return device.is_cuda();
}

// Waits for queued work on `device` (nothing to wait for on the CPU): timing
// and host reads of device results need it.
void synchronize(const at::Device& device);

}  // namespace pactq::train
