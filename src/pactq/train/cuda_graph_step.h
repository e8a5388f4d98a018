// --cuda-graph: the training step's forward and backward captured once in a
// CUDA graph and replayed for every later batch. A ResNet20 step at CIFAR
// sizes is a few hundred small kernels: launching them one by one from the
// host costs more than running them, and a graph launches them all at once.
// The optimiser step stays outside (foreach_sgd.h: a few multi-tensor kernels
// that take the learning rate of the step), as do the alpha guard and the
// metrics, so the schedule, checkpoints and the deferred checks work as in
// eager mode.
#pragma once
#include <ATen/ATen.h>
#include <torch/nn/module.h>

#include <functional>
#include <memory>
#include <utility>
#include <vector>

namespace pactq::train {

// Whether this build can capture CUDA graphs (a CUDA LibTorch, as for the
// fused CUDA kernels).
bool cuda_graphs_built();

class CudaGraphStep {
 public:
  // (loss, logits) of one batch: the forward pass and its loss, no backward.
  using Forward = std::function<std::pair<at::Tensor, at::Tensor>(const at::Tensor& images,
                                                                  const at::Tensor& labels)>;

  // For `model`, already on its CUDA device: its trainable parameters'
  // gradients become the graph's outputs. `eager_steps`: steps run eagerly
  // before the capture, so that lazily built state (cuDNN's autotuning, the
  // optimiser's buffers, allocator pools) exists when it happens. Throws
  // std::invalid_argument naming --cuda-graph for a model off CUDA or a
  // build without CUDA.
  explicit CudaGraphStep(const torch::nn::Module& model, int eager_steps = 3);
  ~CudaGraphStep();
  CudaGraphStep(const CudaGraphStep&) = delete;
  CudaGraphStep& operator=(const CudaGraphStep&) = delete;

  // Forward and backward of `forward` on this batch (every batch has the
  // first one's shape: the loader drops the last partial batch). Gradients
  // are written, not accumulated: no zero_grad is needed. Returns (loss,
  // logits), after the capture the graph's own outputs, valid until the next
  // call.
  std::pair<at::Tensor, at::Tensor> run(const at::Tensor& images, const at::Tensor& labels,
                                        const Forward& forward);
  bool captured() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace pactq::train
