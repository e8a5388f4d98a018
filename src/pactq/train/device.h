// --device: where training, evaluation and the step benchmark run. Models are
// built and loaded on the CPU, then moved; export, the deployed evaluation and
// checkpoints always work from CPU tensors, so a GPU-trained run exports and
// evaluates anywhere.
#pragma once
#include <c10/core/Device.h>
#include <torch/nn/module.h>

#include <string>

#include "pactq/common/torch_compat.h"

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

// Once per run on `device`: on CUDA, cuDNN's autotuner (a run's shapes are
// fixed, so its per-shape search is paid once and every later step gains).
void tune_for_device(const at::Device& device);

// --channels-last: every 4-D parameter of `module` in NHWC memory order (what
// tensor-core convolutions work in; cuDNN transposes around each NCHW one).
// Shapes do not change, so checkpoints, export and evaluation see the same
// tensors; gradients and optimiser state follow the parameters' layout.
void use_channels_last(torch::nn::Module& module);

// A 4-D batch in NHWC memory order (other tensors as they are).
at::Tensor to_channels_last(const at::Tensor& batch);

// --amp: "off" or "bf16". bf16 autocasts convolutions and linear layers to
// bfloat16 (PACT, BatchNorm statistics and the loss stay float32); float16
// would need loss scaling, which pactq does not do. Throws
// std::invalid_argument naming --amp for anything else.
void check_amp_spec(const std::string& amp);

// The autocast scope of one forward pass (and its loss) under --amp `amp`.
compat::AutocastScope autocast_for(const at::Device& device, const std::string& amp);

}  // namespace pactq::train
