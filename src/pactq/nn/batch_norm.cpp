#include "pactq/nn/batch_norm.h"

#include <ATen/core/grad_mode.h>
#include <torch/autograd.h>

#include <cstdint>
#include <vector>

namespace pactq::nn {
namespace {

thread_local StatsReducer* current = nullptr;

// Sum over ranks whose gradient is the sum over ranks of the gradients.
struct AllReduceSum : torch::autograd::Function<AllReduceSum> {
  static at::Tensor forward(torch::autograd::AutogradContext* ctx, const at::Tensor& x,
                            int64_t reducer) {
    ctx->saved_data["reducer"] = reducer;
    at::Tensor y = x.clone();
    (*reinterpret_cast<StatsReducer*>(reducer))(y);
    return y;
  }
  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    auto* reducer = reinterpret_cast<StatsReducer*>(ctx->saved_data["reducer"].toInt());
    at::Tensor g = grads[0].contiguous().clone();
    (*reducer)(g);
    return {g, at::Tensor()};
  }
};

}  // namespace

SyncBatchNormScope::SyncBatchNormScope(StatsReducer* reducer) : previous_(current) {
  current = reducer;
}

SyncBatchNormScope::~SyncBatchNormScope() {
  current = previous_;
}

StatsReducer* current_stats_reducer() {
  return current;
}

at::Tensor sync_batch_norm(const at::Tensor& x, at::Tensor& running_mean, at::Tensor& running_var,
                           at::Tensor& num_batches_tracked, const at::Tensor& weight,
                           const at::Tensor& bias, double momentum, double eps,
                           StatsReducer& reducer) {
  const int64_t channels = x.size(1);
  std::vector<int64_t> dims{0};
  for (int64_t d = 2; d < x.dim(); ++d) dims.push_back(d);
  std::vector<int64_t> shape(static_cast<size_t>(x.dim()), 1);
  shape[1] = channels;
  // Statistics in float32 at least: under --amp bf16 the convolution before
  // hands us bfloat16, whose 8-bit mantissa loses the sums (and E[x^2] - E[x]^2
  // cancels to noise). The input is upcast explicitly, so every op below runs
  // in float32 whether or not autocast is on (none of them is on autocast's
  // lower-precision lists). The output keeps the dtype it had: the input's,
  // promoted with the affine parameters'.
  at::ScalarType out_type = x.scalar_type();
  if (weight.defined()) out_type = at::promote_types(out_type, weight.scalar_type());
  if (bias.defined()) out_type = at::promote_types(out_type, bias.scalar_type());
  const at::Tensor xf = x.to(at::promote_types(x.scalar_type(), at::kFloat));
  const double local_count = static_cast<double>(x.numel() / channels);
  const at::Tensor packed =
      at::cat({xf.sum(dims), (xf * xf).sum(dims),
               at::full({1}, local_count, xf.options().requires_grad(false))});
  const at::Tensor total = AllReduceSum::apply(packed, reinterpret_cast<int64_t>(&reducer));
  const at::Tensor count = total.narrow(0, 2 * channels, 1);
  const at::Tensor mean = total.narrow(0, 0, channels) / count;
  // E[x^2] - E[x]^2 can dip below 0 by rounding where a channel is constant.
  const at::Tensor var = (total.narrow(0, channels, channels) / count - mean * mean).clamp_min(0);
  at::Tensor y = (xf - mean.view(shape)) * at::rsqrt(var.view(shape) + eps);
  if (weight.defined()) y = y * weight.view(shape);
  if (bias.defined()) y = y + bias.view(shape);
  y = y.to(out_type);
  {
    at::NoGradGuard no_grad;
    const double n = count.item<double>();
    if (running_mean.defined()) {
      running_mean.mul_(1 - momentum).add_(mean.detach(), momentum);
      running_var.mul_(1 - momentum).add_(var.detach() * (n / std::max(1.0, n - 1)), momentum);
    }
    if (num_batches_tracked.defined()) num_batches_tracked.add_(1);
  }
  return y;
}

}  // namespace pactq::nn
