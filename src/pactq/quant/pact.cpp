#include "pactq/quant/pact.h"

#include <ATen/Parallel.h>
#include <torch/autograd.h>

#include <cmath>
#include <stdexcept>
#include <string>
#include <vector>

#include "pactq/quant/bits.h"
#include "pactq/quant/pact_cuda.h"
#include "pactq/quant/pact_kernel.h"

#if defined(PACTQ_WITH_CUDA_KERNELS)
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#endif

namespace pactq::quant {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::tensor_list;

// Work split into fixed-size chunks so the alpha-gradient sum is the same
// whatever the thread count (the chunk partial sums are added in order).
constexpr int64_t kChunk = 1 << 15;

// Runs fn(c, begin, end) for every chunk c of [0, numel) across threads.
// Whole chunks per task: chunk starts are multiples of kPactMaskGroup, so no
// two threads write the same packed mask byte.
template <class Fn>
void for_each_chunk(int64_t numel, const Fn& fn) {
  static_assert(kChunk % kernels::kPactMaskGroup == 0);
  const int64_t chunks = (numel + kChunk - 1) / kChunk;
  at::parallel_for(0, chunks, 1, [&](int64_t c0, int64_t c1) {
    for (int64_t c = c0; c < c1; ++c) fn(c, c * kChunk, std::min(numel, (c + 1) * kChunk));
  });
}

struct Scales {
  at::Tensor scale;      // n / alpha
  at::Tensor inv_scale;  // alpha / n
};

// Both implementations derive the step sizes with the same ATen ops, so the
// elementwise products that follow round identically.
Scales step_scales(const at::Tensor& alpha, int64_t n) {
  const at::Tensor levels = at::full_like(alpha, static_cast<double>(n));
  return {levels / alpha, alpha / levels};
}

std::pair<at::Tensor, at::Tensor> forward_composite(const at::Tensor& x, const at::Tensor& alpha,
                                                    int bits) {
  const at::Tensor a = alpha.reshape({}).to(x.dtype());
  at::Tensor y = at::minimum(x.clamp_min(0), a);
  if (!is_full_precision(bits)) {
    const Scales s = step_scales(a, max_code(bits));
    y = at::round(y * s.scale) * s.inv_scale;
  }
  const at::Tensor mask = (x >= 0).to(at::kByte) + (x >= a).to(at::kByte);
  return {y, mask};
}

// The fused paths run over the tensor's memory in its own dense layout (a
// channels_last activation stays channels_last, with no copy); backward reads
// the gradient in that same layout, so mask bit i and gradient element i are
// one element.
struct FusedForward {
  at::Tensor x, alpha, y, mask;  // x dense in `format`, alpha a float32 scalar
};
FusedForward fused_forward_tensors(const at::Tensor& x_in, const at::Tensor& alpha,
                                   at::MemoryFormat format) {
  FusedForward f;
  f.x = x_in.contiguous(format);
  f.alpha = alpha.reshape({}).to(at::kFloat).contiguous();
  f.y = at::empty_like(f.x, f.x.options(), format);
  f.mask = at::empty({kernels::pact_mask_bytes(f.x.numel())}, f.x.options().dtype(at::kByte));
  return f;
}

std::pair<at::Tensor, at::Tensor> forward_fused(const at::Tensor& x_in, const at::Tensor& alpha,
                                                int bits, at::MemoryFormat format) {
  const auto [x, a, y, mask] = fused_forward_tensors(x_in, alpha, format);
  kernels::PactForwardArgs args{x.data_ptr<float>(),
                                y.data_ptr<float>(),
                                mask.data_ptr<uint8_t>(),
                                a.item<float>(),
                                0.0f,
                                0.0f,
                                !is_full_precision(bits)};
  if (args.quantize) {
    const Scales s = step_scales(a, max_code(bits));
    args.scale = s.scale.item<float>();  // CPU tensors: a memory read, not a device sync
    args.inv_scale = s.inv_scale.item<float>();
  }
  const kernels::PactForwardFn kernel = kernels::selected_pact_kernel_set().forward;
  for_each_chunk(x.numel(), [&](int64_t, int64_t begin, int64_t end) { kernel(args, begin, end); });
  return {y, mask};
}

std::pair<at::Tensor, at::Tensor> backward_composite(const at::Tensor& grad,
                                                     const at::Tensor& mask) {
  const at::Tensor grad_x = grad * (mask == kPactPass).to(grad.dtype());
  const at::Tensor clipped = grad * (mask == kPactClipped).to(grad.dtype());
  return {grad_x, clipped.sum(at::kDouble).to(grad.dtype())};
}

std::pair<at::Tensor, at::Tensor> backward_fused(const at::Tensor& grad_in, const at::Tensor& mask,
                                                 at::MemoryFormat format) {
  const at::Tensor grad = grad_in.to(at::kFloat).contiguous(format);
  at::Tensor grad_x = at::empty_like(grad, grad.options(), format);
  const int64_t numel = grad.numel();
  std::vector<double> partial(static_cast<size_t>((numel + kChunk - 1) / kChunk), 0.0);
  const kernels::PactBackwardFn kernel = kernels::selected_pact_kernel_set().backward;
  const float* g = grad.data_ptr<float>();
  const uint8_t* m = mask.data_ptr<uint8_t>();
  float* gx = grad_x.data_ptr<float>();
  for_each_chunk(numel, [&](int64_t c, int64_t begin, int64_t end) {
    partial[c] = kernel(g, m, gx, begin, end);
  });
  double total = 0.0;
  for (double p : partial) total += p;
  return {grad_x, at::scalar_tensor(total, grad.options()).to(at::kFloat)};
}

// Which implementation a forward used; its backward must be the matching one
// (the fused kernels' masks are packed).
enum class Path : int64_t { kComposite = 0, kFusedCpu = 1, kFusedCuda = 2 };

#if defined(PACTQ_WITH_CUDA_KERNELS)
// As forward_fused / backward_fused, on the current CUDA stream.
std::pair<at::Tensor, at::Tensor> forward_fused_cuda(const at::Tensor& x_in,
                                                     const at::Tensor& alpha, int bits,
                                                     at::MemoryFormat format) {
  const c10::cuda::CUDAGuard guard(x_in.device());
  const auto [x, a, y, mask] = fused_forward_tensors(x_in, alpha, format);
  cuda::PactCudaForwardArgs args{x.data_ptr<float>(),
                                 y.data_ptr<float>(),
                                 mask.data_ptr<uint8_t>(),
                                 a.data_ptr<float>(),
                                 nullptr,
                                 nullptr,
                                 x.numel(),
                                 !is_full_precision(bits)};
  Scales s;
  if (args.quantize) {  // device scalars: no host read
    s = step_scales(a, max_code(bits));
    s.scale = s.scale.contiguous();
    s.inv_scale = s.inv_scale.contiguous();
    args.scale = s.scale.data_ptr<float>();
    args.inv_scale = s.inv_scale.data_ptr<float>();
  }
  cuda::pact_forward(args, c10::cuda::getCurrentCUDAStream(x.device().index()).stream());
  return {y, mask};
}

std::pair<at::Tensor, at::Tensor> backward_fused_cuda(const at::Tensor& grad_in,
                                                      const at::Tensor& mask,
                                                      at::MemoryFormat format) {
  const c10::cuda::CUDAGuard guard(grad_in.device());
  const at::Tensor grad = grad_in.to(at::kFloat).contiguous(format);
  at::Tensor grad_x = at::empty_like(grad, grad.options(), format);
  const int64_t numel = grad.numel();
  at::Tensor partials =
      at::empty({cuda::pact_backward_partials(numel)}, grad.options().dtype(at::kDouble));
  cuda::pact_backward(grad.data_ptr<float>(), mask.data_ptr<uint8_t>(), grad_x.data_ptr<float>(),
                      partials.data_ptr<double>(), numel,
                      c10::cuda::getCurrentCUDAStream(grad.device().index()).stream());
  return {grad_x, partials.sum().to(at::kFloat)};
}
#endif

class PactFunction : public torch::autograd::Function<PactFunction> {
 public:
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& x, const at::Tensor& alpha,
                            int64_t bits, int64_t path_code) {
    const Path path = static_cast<Path>(path_code);
    const at::MemoryFormat format = x.suggest_memory_format();
    std::pair<at::Tensor, at::Tensor> out;
    switch (path) {
      case Path::kFusedCpu:
        out = forward_fused(x, alpha, static_cast<int>(bits), format);
        break;
      case Path::kFusedCuda:
#if defined(PACTQ_WITH_CUDA_KERNELS)
        out = forward_fused_cuda(x, alpha, static_cast<int>(bits), format);
        break;
#else
        throw std::logic_error("pact: CUDA kernels are not built");
#endif
      case Path::kComposite:
        out = forward_composite(x, alpha, static_cast<int>(bits));
        break;
    }
    ctx->save_for_backward({out.second});
    ctx->saved_data["path"] = path_code;
    ctx->saved_data["format"] = static_cast<int64_t>(format);
    ctx->saved_data["alpha_shape"] = alpha.sizes().vec();
    ctx->saved_data["alpha_dtype"] = static_cast<int64_t>(alpha.scalar_type());
    return out.first;
  }

  static tensor_list backward(AutogradContext* ctx, tensor_list grad_outputs) {
    const at::Tensor mask = ctx->get_saved_variables()[0];
    const Path path = static_cast<Path>(ctx->saved_data["path"].toInt());
    const auto format = static_cast<at::MemoryFormat>(ctx->saved_data["format"].toInt());
    const at::Tensor& grad = grad_outputs[0];
    std::pair<at::Tensor, at::Tensor> out;
    switch (path) {
      case Path::kFusedCpu:
        out = backward_fused(grad, mask, format);
        break;
      case Path::kFusedCuda:
#if defined(PACTQ_WITH_CUDA_KERNELS)
        out = backward_fused_cuda(grad, mask, format);
        break;
#else
        throw std::logic_error("pact: CUDA kernels are not built");
#endif
      case Path::kComposite:
        out = backward_composite(grad, mask);
        break;
    }
    const auto shape = ctx->saved_data["alpha_shape"].toIntVector();
    const auto dtype = static_cast<at::ScalarType>(ctx->saved_data["alpha_dtype"].toInt());
    return {out.first, out.second.reshape(shape).to(dtype), at::Tensor(), at::Tensor()};
  }
};

}  // namespace

bool pact_cuda_kernels_built() {
#if defined(PACTQ_WITH_CUDA_KERNELS)
  return true;
#else
  return false;
#endif
}

bool pact_fused_eligible(const at::Tensor& x, const at::Tensor& alpha) {
  if (x.scalar_type() != at::kFloat || x.layout() != at::kStrided) return false;
  if (x.device().is_cpu()) return alpha.device().is_cpu();
  return x.device().is_cuda() && alpha.device() == x.device() && pact_cuda_kernels_built();
}

at::Tensor pact(const at::Tensor& x, const at::Tensor& alpha, int bits, PactImpl impl) {
  check_bits(bits, "pact");
  if (alpha.numel() != 1) {
    throw std::invalid_argument("pact: alpha must hold one value per layer, got shape " +
                                std::string(c10::str(alpha.sizes())));
  }
  if (alpha.device() != x.device()) {
    throw std::invalid_argument("pact: alpha is on " + alpha.device().str() +
                                " but the input is on " + x.device().str());
  }
  // alpha = 0 divides by zero and alpha < 0 makes the fused and composite
  // masks disagree. On the CPU the check is a memory read; on other devices it
  // would be a sync per call, so there alpha is checked where values enter
  // (nn::check_alphas at load, nn::guard_alphas after each step).
  if (alpha.device().is_cpu()) {
    const double a = alpha.item<double>();
    if (!(a > 0.0) || !std::isfinite(a)) {
      throw std::invalid_argument("pact: alpha must be positive and finite, got " +
                                  std::to_string(a));
    }
  }
  bool fused = false;
  switch (impl) {
    case PactImpl::kAuto:
      fused = pact_fused_eligible(x, alpha);
      break;
    case PactImpl::kFused:
      if (!pact_fused_eligible(x, alpha)) {
        throw std::invalid_argument(pact_cuda_kernels_built()
                                        ? "pact: the fused kernels need float32 CPU or CUDA tensors"
                                        : "pact: the fused kernel needs float32 CPU tensors (this "
                                          "build has no CUDA kernels)");
      }
      fused = true;
      break;
    case PactImpl::kComposite:
      break;
  }
  const Path path =
      !fused ? Path::kComposite : (x.device().is_cpu() ? Path::kFusedCpu : Path::kFusedCuda);
  return PactFunction::apply(x, alpha, static_cast<int64_t>(bits), static_cast<int64_t>(path));
}

}  // namespace pactq::quant
