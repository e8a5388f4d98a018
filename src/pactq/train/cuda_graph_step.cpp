#include "pactq/train/cuda_graph_step.h"

#include <ATen/autocast_mode.h>

#include <stdexcept>

#include "pactq/common/torch_compat.h"

#if defined(PACTQ_WITH_CUDA_KERNELS)
#include <ATen/cuda/CUDAGraph.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#endif

namespace pactq::train {

bool cuda_graphs_built() {
#if defined(PACTQ_WITH_CUDA_KERNELS)
  return true;
#else
  return false;
#endif
}

struct CudaGraphStep::Impl {
  std::vector<at::Tensor> params;
  int eager_steps = 0;
  int calls = 0;
  bool captured = false;
  at::Tensor images, labels, loss, logits;  // the graph's static inputs and outputs
#if defined(PACTQ_WITH_CUDA_KERNELS)
  at::cuda::CUDAGraph graph;
#endif

  void drop_grads() {
    for (at::Tensor& p : params) p.mutable_grad().reset();
  }
};

CudaGraphStep::CudaGraphStep(const torch::nn::Module& model, int eager_steps)
    : impl_(std::make_unique<Impl>()) {
  for (const at::Tensor& p : model.parameters())
    if (p.requires_grad()) impl_->params.push_back(p);
  const at::Device device =
      impl_->params.empty() ? at::Device(at::kCPU) : impl_->params.front().device();
  if (!device.is_cuda()) {
    throw std::invalid_argument(
        "--cuda-graph: needs a CUDA device (--device cuda), this run is on " + device.str());
  }
  if (!cuda_graphs_built()) {
    throw std::invalid_argument(
        "--cuda-graph: this build has no CUDA (build against a CUDA LibTorch; README, \"GPU\")");
  }
  impl_->eager_steps = eager_steps;
}

CudaGraphStep::~CudaGraphStep() = default;

bool CudaGraphStep::captured() const {
  return impl_->captured;
}

std::pair<at::Tensor, at::Tensor> CudaGraphStep::run(const at::Tensor& images,
                                                     const at::Tensor& labels,
                                                     const Forward& forward) {
  Impl& s = *impl_;
  if (!s.captured && s.calls < s.eager_steps) {
    ++s.calls;
    s.drop_grads();
    auto out = forward(images, labels);
    out.first.backward();
    return out;
  }
#if defined(PACTQ_WITH_CUDA_KERNELS)
  if (!s.captured) {
    s.images = images.clone();
    s.labels = labels.clone();
    // Gradients allocated during the capture live in the graph's memory pool
    // at fixed addresses, and each replay writes them there.
    s.drop_grads();
    const at::Device device = images.device();
    compat::cuda_synchronize(device.index());
    {
      c10::cuda::CUDAStream stream = c10::cuda::getStreamFromPool(false, device.index());
      c10::cuda::CUDAStreamGuard on_side_stream(stream);
      // Autocast's cast cache would hand the graph tensors freed at the
      // scope's end (PyTorch's advice: no cache under capture).
      const bool cache = at::autocast::is_autocast_cache_enabled();
      at::autocast::set_autocast_cache_enabled(false);
      // Thread-local capture: the loader's threads may pin host memory (a
      // CUDA call) meanwhile, which a global capture would reject.
      s.graph.capture_begin({0, 0}, cudaStreamCaptureModeThreadLocal);
      auto out = forward(s.images, s.labels);
      out.first.backward();
      s.loss = out.first.detach();
      s.logits = out.second.detach();
      s.graph.capture_end();
      at::autocast::set_autocast_cache_enabled(cache);
    }
    compat::cuda_synchronize(device.index());
    s.captured = true;
  }
  if (images.sizes() != s.images.sizes() || labels.sizes() != s.labels.sizes()) {
    throw std::invalid_argument("--cuda-graph: a batch of shape " +
                                std::string(c10::str(images.sizes())) + " after the captured " +
                                std::string(c10::str(s.images.sizes())) +
                                " (the graph replays fixed shapes)");
  }
  // The capture itself computed nothing: this batch, like every later one,
  // runs as a replay.
  s.images.copy_(images, /*non_blocking=*/true);
  s.labels.copy_(labels, /*non_blocking=*/true);
  s.graph.replay();
  return {s.loss, s.logits};
#else
  throw std::logic_error("CudaGraphStep: no CUDA in this build");
#endif
}

}  // namespace pactq::train
