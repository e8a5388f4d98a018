// PACT activation quantizer (Choi et al. 2018) as a LibTorch autograd function.
//
//   y   = clamp(x, 0, alpha)
//   y_q = round(y * n / alpha) * alpha / n,  n = 2^bits - 1   (bits == 32: y_q = y)
//
// Backward is the paper's straight-through estimator over the whole quantize
// step: dL/dx = dL/dy_q where 0 <= x < alpha (else 0), dL/dalpha = sum of
// dL/dy_q over x >= alpha, and nothing from elements below alpha (see
// PACT.md, "the gradient trap"). Only a region mask is kept for backward,
// not the input: 2 bits per element on the fused CPU and CUDA paths.
#pragma once
#include <ATen/ATen.h>

namespace pactq::quant {

enum class PactImpl {
  kAuto,       // fused kernel for float32 CPU (and CUDA, when built) tensors, else composite
  kFused,      // fused kernel; throws if the tensors do not qualify
  kComposite,  // ATen ops only: works on every device and dtype
};

// alpha: one-element tensor (any shape with numel 1) on x's device. No host
// sync happens on non-CPU devices.
at::Tensor pact(const at::Tensor& x, const at::Tensor& alpha, int bits,
                PactImpl impl = PactImpl::kAuto);

// True when a fused kernel can handle these tensors: float32 on the CPU, or
// float32 on CUDA in a build with the CUDA kernels (any dense layout there).
bool pact_fused_eligible(const at::Tensor& x, const at::Tensor& alpha);

// Whether this build has the CUDA kernels (pact_cuda.cu; CMake builds them
// when it finds a CUDA LibTorch and a CUDA compiler).
bool pact_cuda_kernels_built();

// Region codes stored in the backward mask.
enum PactRegion : uint8_t { kPactBelow = 0, kPactPass = 1, kPactClipped = 2 };

}  // namespace pactq::quant
