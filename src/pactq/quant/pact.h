// PACT activation quantizer (Choi et al. 2018) as a LibTorch autograd function.
//
//   y   = clamp(x, 0, alpha)
//   y_q = round(y * n / alpha) * alpha / n,  n = 2^bits - 1   (bits == 32: y_q = y)
//
// Backward is the paper's straight-through estimator over the whole quantize
// step: dL/dx = dL/dy_q where 0 <= x < alpha (else 0), dL/dalpha = sum of
// dL/dy_q over x >= alpha, and nothing from elements below alpha (see
// PACT.md, "the gradient trap"). Only a region mask is kept for backward,
// not the input: 2 bits per element on the fused CPU path.
#pragma once
#include <ATen/ATen.h>

namespace pactq::quant {

enum class PactImpl {
  kAuto,       // fused CPU kernel for contiguous float32 CPU tensors, composite otherwise
  kFused,      // fused CPU kernel; throws if the tensors do not qualify
  kComposite,  // ATen ops only: works on every device and dtype
};

// alpha: one-element tensor (any shape with numel 1) on x's device. No host
// sync happens on non-CPU devices.
at::Tensor pact(const at::Tensor& x, const at::Tensor& alpha, int bits,
                PactImpl impl = PactImpl::kAuto);

// True when the fused CPU kernel can handle these tensors.
bool pact_fused_eligible(const at::Tensor& x, const at::Tensor& alpha);

// Region codes stored in the backward mask.
enum PactRegion : uint8_t { kPactBelow = 0, kPactPass = 1, kPactClipped = 2 };

}  // namespace pactq::quant
