#include "pactq/quant/weight_quant.h"

#include <torch/autograd.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <stdexcept>

#include "pactq/quant/bits.h"
#include "pactq/quant/weight_quant_cuda.h"

#if defined(PACTQ_WITH_CUDA_KERNELS)
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#endif

namespace pactq::quant {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::tensor_list;

class RoundSte : public torch::autograd::Function<RoundSte> {
 public:
  static at::Tensor forward(AutogradContext*, const at::Tensor& x) { return at::round(x); }
  static tensor_list backward(AutogradContext*, tensor_list grads) { return {grads[0]}; }
};

// Keeps a degenerate tensor (all zeros) from dividing by zero.
constexpr double kTinyScale = 1e-12;

// Straight-through: exactly the value of `quantized` (w - w is exactly 0),
// the gradient of `w`.
at::Tensor straight_through(const at::Tensor& w, const at::Tensor& quantized) {
  return quantized.detach() + (w - w.detach());
}

at::Tensor sawb_clip(const at::Tensor& w, int bits) {
  const auto [c1, c2] = sawb_coefficients(bits);
  const at::Tensor wd = w.detach();
  const at::Tensor a = c1 * wd.square().mean().sqrt() - c2 * wd.abs().mean();
  // A distribution too narrow for the fit (e.g. constant weights) gives a <= 0:
  // fall back to the largest magnitude, without a host sync.
  const at::Tensor fallback = wd.abs().max();
  return at::where(a > 0, a, fallback).clamp_min(kTinyScale);
}

at::Tensor sawb_codes_float(const at::Tensor& w, const at::Tensor& a, int64_t n) {
  return at::round((at::clamp(w, -a, a) / a + 1) * (0.5 * static_cast<double>(n)));
}

// ---- DoReFa fused CPU path (float32, contiguous): one autograd node and
// three passes instead of ~25 small ATen ops per layer and step, the cost
// that made W4 training slower than float (the weights are small; the op
// overhead was not). tanh stays an ATen op (vectorised); the rest are loops.
// The composite below remains the definition (and the path on other
// devices); tests compare the two.

// A dense float32 tensor on a device of `type`: what the fused paths take.
bool fused_eligible(const at::Tensor& w, at::DeviceType type) {
  return w.device().type() == type && w.scalar_type() == at::kFloat && w.layout() == at::kStrided;
}

bool dorefa_fused_eligible(const at::Tensor& w) {
  return fused_eligible(w, at::kCPU);
}

// The CPU codes, the one rounding rule of both the fused forward and the
// export: t = tanh(w), m = max(max |t|, kTinyScale),
// q = round((t / (2m) + 1/2) * n) as float.
struct DoReFaCpuCodes {
  at::Tensor t, q;
  float m = 0.f;
};
DoReFaCpuCodes dorefa_codes_cpu(const at::Tensor& w, int64_t n) {
  DoReFaCpuCodes c;
  c.t = at::tanh(w.contiguous());
  const int64_t numel = c.t.numel();
  const float* tp = c.t.data_ptr<float>();
  // A NaN weight makes the whole layer NaN, as at::max does on the composite
  // path (std::max would skip it), so a diverging layer reaches the loss.
  float m = 0.f;
  bool any_nan = false;
  for (int64_t i = 0; i < numel; ++i) {
    m = std::max(m, std::fabs(tp[i]));
    any_nan = any_nan || std::isnan(tp[i]);
  }
  c.m = any_nan ? std::numeric_limits<float>::quiet_NaN()
                : std::max(m, static_cast<float>(kTinyScale));
  const float two_m = 2.f * c.m, nf = static_cast<float>(n);
  c.q = at::empty_like(c.t);
  float* qp = c.q.data_ptr<float>();
  for (int64_t i = 0; i < numel; ++i) qp[i] = std::nearbyint((tp[i] / two_m + 0.5f) * nf);
  return c;
}

class DoReFaFunction : public torch::autograd::Function<DoReFaFunction> {
 public:
  // w_q = 2q / n - 1, computed in place over the codes.
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& w, int64_t n) {
    DoReFaCpuCodes c = dorefa_codes_cpu(w, n);
    const float nf = static_cast<float>(n);
    float* o = c.q.data_ptr<float>();
    for (int64_t i = 0; i < c.q.numel(); ++i) o[i] = 2.f * o[i] / nf - 1.f;
    ctx->save_for_backward({c.t});
    ctx->saved_data["m"] = static_cast<double>(c.m);
    return c.q;
  }

  // w_q = 2 round_ste(u n) / n - 1 with u = t / (2m) + 1/2, m = max|t|:
  //   dL/dt_i = g_i / m, plus through m (shared evenly by the elements at the
  //   max, as LibTorch's max() does): -(sum_j g_j t_j) / m^2 * sign(t_k) / count;
  //   dL/dw = dL/dt (1 - t^2).
  static tensor_list backward(AutogradContext* ctx, tensor_list grads) {
    const at::Tensor t = ctx->get_saved_variables()[0];
    const float m = static_cast<float>(ctx->saved_data["m"].toDouble());
    const at::Tensor g = grads[0].to(at::kFloat).contiguous();
    const int64_t numel = t.numel();
    const float* tp = t.data_ptr<float>();
    const float* gp = g.data_ptr<float>();
    double gt = 0.0;
    int64_t count = 0;
    const bool at_floor = m <= static_cast<float>(kTinyScale);
    for (int64_t i = 0; i < numel; ++i) {
      gt += static_cast<double>(gp[i]) * tp[i];
      if (std::fabs(tp[i]) == m) ++count;
    }
    // clamp_min passes no gradient when the floor is what was used.
    const float dm =
        (at_floor || count == 0)
            ? 0.f
            : static_cast<float>(-gt / (static_cast<double>(m) * m) / static_cast<double>(count));
    at::Tensor gw = at::empty_like(t);
    float* o = gw.data_ptr<float>();
    for (int64_t i = 0; i < numel; ++i) {
      float gti = gp[i] / m;
      if (dm != 0.f && std::fabs(tp[i]) == m) gti += tp[i] > 0.f ? dm : (tp[i] < 0.f ? -dm : 0.f);
      o[i] = gti * (1.f - tp[i] * tp[i]);
    }
    return {gw.view(t.sizes()), at::Tensor()};
  }
};

#if defined(PACTQ_WITH_CUDA_KERNELS)
// ---- CUDA fused paths (weight_quant_cuda.cu): two launches each way, the
// statistic kept on the device. Elementwise, so any dense layout works; the
// weight's own (channels_last under --channels-last) is kept.

void* current_stream(const at::Tensor& t) {
  return c10::cuda::getCurrentCUDAStream(t.device().index()).stream();
}

class DoReFaCudaFunction : public torch::autograd::Function<DoReFaCudaFunction> {
 public:
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& w_in, int64_t n) {
    const c10::cuda::CUDAGuard guard(w_in.device());
    const at::MemoryFormat format = w_in.suggest_memory_format();
    const at::Tensor w = w_in.contiguous(format);
    at::Tensor t = at::empty_like(w), wq = at::empty_like(w);
    at::Tensor m = at::empty({}, w.options());
    at::Tensor scratch = at::empty({cuda::dorefa_forward_scratch_floats(w.numel())}, w.options());
    cuda::dorefa_forward(w.data_ptr<float>(), t.data_ptr<float>(), wq.data_ptr<float>(),
                         m.data_ptr<float>(), scratch.data_ptr<float>(), w.numel(), n,
                         current_stream(w));
    ctx->save_for_backward({t, m});
    return wq;
  }

  static tensor_list backward(AutogradContext* ctx, tensor_list grads) {
    const auto saved = ctx->get_saved_variables();
    const at::Tensor& t = saved[0];
    const at::Tensor& m = saved[1];
    const c10::cuda::CUDAGuard guard(t.device());
    const at::Tensor g = grads[0].to(at::kFloat).contiguous(t.suggest_memory_format());
    at::Tensor grad_w = at::empty_like(t);
    at::Tensor scratch = at::empty({cuda::dorefa_backward_scratch_doubles(t.numel())},
                                   t.options().dtype(at::kDouble));
    cuda::dorefa_backward(g.data_ptr<float>(), t.data_ptr<float>(), m.data_ptr<float>(),
                          grad_w.data_ptr<float>(), scratch.data_ptr<double>(), t.numel(),
                          current_stream(t));
    return {grad_w, at::Tensor()};
  }
};

class SawbCudaFunction : public torch::autograd::Function<SawbCudaFunction> {
 public:
  static at::Tensor forward(AutogradContext*, const at::Tensor& w_in, int64_t n, double c1,
                            double c2) {
    const c10::cuda::CUDAGuard guard(w_in.device());
    const at::Tensor w = w_in.contiguous(w_in.suggest_memory_format());
    at::Tensor wq = at::empty_like(w);
    at::Tensor scratch =
        at::empty({cuda::sawb_forward_scratch_doubles(w.numel())}, w.options().dtype(at::kDouble));
    cuda::sawb_forward(w.data_ptr<float>(), wq.data_ptr<float>(), scratch.data_ptr<double>(),
                       w.numel(), n, c1, c2, current_stream(w));
    return wq;
  }

  // Straight-through: the gradient passes unchanged.
  static tensor_list backward(AutogradContext*, tensor_list grads) {
    return {grads[0], at::Tensor(), at::Tensor(), at::Tensor()};
  }
};
#endif

at::Tensor dorefa_codes_float(const at::Tensor& t, const at::Tensor& max_abs, int64_t n, bool ste) {
  const at::Tensor u = t / (2 * max_abs) + 0.5;
  return ste ? round_ste(u * static_cast<double>(n)) : at::round(u * static_cast<double>(n));
}

}  // namespace

at::Tensor round_ste(const at::Tensor& x) {
  return RoundSte::apply(x);
}

WeightQuantKind parse_weight_quant(const std::string& name) {
  if (name == "dorefa") return WeightQuantKind::kDoReFa;
  if (name == "sawb") return WeightQuantKind::kSawb;
  throw std::invalid_argument("weight quantizer '" + name +
                              "' is unknown (expected dorefa or sawb)");
}

std::string to_string(WeightQuantKind kind) {
  return kind == WeightQuantKind::kDoReFa ? "dorefa" : "sawb";
}

std::pair<double, double> sawb_coefficients(int bits) {
  switch (bits) {
    case 2:
      return {3.212, 2.178};
    case 3:
      return {7.509, 6.892};
    case 4:
      return {12.68, 12.80};
    case 5:
      return {17.74, 18.64};
    case 6:
      return {17.74 + (31.76 - 17.74) / 3.0, 18.64 + (35.04 - 18.64) / 3.0};
    case 7:
      return {17.74 + 2.0 * (31.76 - 17.74) / 3.0, 18.64 + 2.0 * (35.04 - 18.64) / 3.0};
    case 8:
      return {31.76, 35.04};
    default:
      throw std::invalid_argument("sawb: bit width " + std::to_string(bits) +
                                  " is not supported (expected 2..8)");
  }
}

at::Tensor quantize_weight(const at::Tensor& w, int bits, WeightQuantKind kind) {
  check_bits(bits, std::string("weight quantizer ") + to_string(kind),
             kind == WeightQuantKind::kSawb ? 2 : 1);
  if (is_full_precision(bits)) return w;
  const int64_t n = max_code(bits);
  if (kind == WeightQuantKind::kSawb) {
#if defined(PACTQ_WITH_CUDA_KERNELS)
    if (fused_eligible(w, at::kCUDA)) {
      const auto [c1, c2] = sawb_coefficients(bits);
      return SawbCudaFunction::apply(w, n, c1, c2);
    }
#endif
    const at::Tensor a = sawb_clip(w, bits);
    const at::Tensor q = sawb_codes_float(w.detach(), a, n);
    return straight_through(w, a * (2 * q - n) / static_cast<double>(n));
  }
  if (bits == 1) {
    const at::Tensor mean_abs = w.detach().abs().mean();
    const at::Tensor sign = at::where(w.detach() >= 0, at::ones_like(w), -at::ones_like(w));
    return straight_through(w, sign * mean_abs);
  }
  if (dorefa_fused_eligible(w)) return DoReFaFunction::apply(w, n);
#if defined(PACTQ_WITH_CUDA_KERNELS)
  if (fused_eligible(w, at::kCUDA)) return DoReFaCudaFunction::apply(w, n);
#endif
  return quantize_weight_composite(w, bits);
}

at::Tensor quantize_weight_composite(const at::Tensor& w, int bits) {
  check_bits(bits, "weight quantizer dorefa", 2);
  if (is_full_precision(bits)) return w;
  const int64_t n = max_code(bits);
  const at::Tensor t = at::tanh(w);
  const at::Tensor max_abs = t.abs().max().clamp_min(kTinyScale);
  const at::Tensor q = dorefa_codes_float(t, max_abs, n, /*ste=*/true);
  return 2 * q / static_cast<double>(n) - 1;
}

WeightCodes weight_codes(const at::Tensor& w_in, int bits, WeightQuantKind kind) {
  check_bits(bits, std::string("weight quantizer ") + to_string(kind),
             kind == WeightQuantKind::kSawb ? 2 : 1);
  if (is_full_precision(bits)) {
    throw std::invalid_argument("weight_codes: a full-precision layer has no integer codes");
  }
  const at::Tensor w = w_in.detach().to(at::kFloat);
  // NaN has no integer code (the byte cast would be arbitrary).
  if (!at::isfinite(w).all().item<bool>()) {
    throw std::invalid_argument("weight_codes: the weights hold NaN or Inf (a diverged layer)");
  }
  const int64_t n = max_code(bits);
  WeightCodes out;
  out.bits = bits;
  at::Tensor q;
  if (kind == WeightQuantKind::kSawb) {
    const at::Tensor a = sawb_clip(w, bits);
    q = sawb_codes_float(w, a, n);
    out.scale = a.item<double>();
  } else if (bits == 1) {
    q = (w >= 0).to(at::kFloat);
    out.scale = w.abs().mean().item<double>();
  } else if (dorefa_fused_eligible(w)) {
    // The rounding rule training used on this device, so the codes are exactly
    // the trained values.
    q = dorefa_codes_cpu(w, n).q;
    out.scale = 1.0;
  } else {
    const at::Tensor t = at::tanh(w);
    q = dorefa_codes_float(t, t.abs().max().clamp_min(kTinyScale), n, /*ste=*/false);
    out.scale = 1.0;
  }
  out.codes = q.clamp(0, static_cast<double>(n)).to(at::kByte);
  return out;
}

at::Tensor dequantize(const WeightCodes& c) {
  const double n = static_cast<double>(max_code(c.bits));
  return (2 * c.codes.to(at::kFloat) - n) / n * c.scale;
}

}  // namespace pactq::quant
