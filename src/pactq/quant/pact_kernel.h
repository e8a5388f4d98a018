// Fused single-pass CPU kernels behind quant::pact (float32, contiguous).
// Scalar reference and AVX2 variant share one signature; the set in use is
// chosen once by the one ISA rule of common/cpu_isa.h, as the runtime's is.
#pragma once
#include <cstdint>

#include "pactq/common/cpu_isa.h"

namespace pactq::quant::kernels {

// The backward mask keeps each element's PactRegion in 2 bits: per group of 8
// elements one byte of "passes" bits and one of "clipped" bits (layout in
// pact_kernel.cpp), a quarter of a 1-byte mask, so PACT keeps 1/16 of the
// activation's float size for backward. Kernels take ranges whose begin is a
// multiple of kPactMaskGroup, so that no two ranges write the same mask byte.
constexpr int64_t kPactMaskGroup = 8;
inline int64_t pact_mask_bytes(int64_t numel) {
  return 2 * ((numel + 7) / 8);
}

// For i in [begin, end): y[i] = round(clamp(x[i], 0, alpha) * scale) * inv_scale
// (no rounding when quantize == false); mask region of i = (x >= 0) + (x >= alpha)
// (a NaN input gives a NaN output, as the composite path does, and region below).
struct PactForwardArgs {
  const float* x;
  float* y;
  uint8_t* mask;  // packed, see above
  float alpha;
  float scale;      // n / alpha
  float inv_scale;  // alpha / n
  bool quantize;
};
using PactForwardFn = void (*)(const PactForwardArgs& args, int64_t begin, int64_t end);

// grad_x[i] = grad_y[i] where the region is pass, else 0. Returns the sum of
// grad_y over the clipped region, accumulated in double.
using PactBackwardFn = double (*)(const float* grad_y, const uint8_t* mask, float* grad_x,
                                  int64_t begin, int64_t end);

void pact_forward_scalar(const PactForwardArgs& args, int64_t begin, int64_t end);
double pact_backward_scalar(const float* grad_y, const uint8_t* mask, float* grad_x, int64_t begin,
                            int64_t end);
#if defined(__x86_64__)
void pact_forward_avx2(const PactForwardArgs& args, int64_t begin, int64_t end);
double pact_backward_avx2(const float* grad_y, const uint8_t* mask, float* grad_x, int64_t begin,
                          int64_t end);
#endif

// One kernel of each PACT family, all of one ISA.
struct PactKernelSet {
  Isa isa = Isa::kRef;
  PactForwardFn forward = nullptr;
  PactBackwardFn backward = nullptr;
};
// The set for `isa`, filled once; nullptr when this build or CPU cannot run
// it (there is no AVX-512 PACT set: that ISA uses the AVX2 one).
const PactKernelSet* pact_kernel_set(Isa isa);
// THE set in use: the best set at or below selected_isa().
const PactKernelSet& selected_pact_kernel_set();

}  // namespace pactq::quant::kernels
