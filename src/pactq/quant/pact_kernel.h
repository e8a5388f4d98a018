// Fused single-pass CPU kernels behind quant::pact (float32, contiguous).
// Scalar reference and AVX2 variant share one signature; the AVX2 variant is
// chosen at run time from the CPU flags.
#pragma once
#include <cstdint>

namespace pactq::quant::kernels {

// For i in [begin, end): y[i] = round(clamp(x[i], 0, alpha) * scale) * inv_scale
// (no rounding when quantize == false); mask[i] = PactRegion of x[i].
struct PactForwardArgs {
  const float* x;
  float* y;
  uint8_t* mask;
  float alpha;
  float scale;      // n / alpha
  float inv_scale;  // alpha / n
  bool quantize;
};
using PactForwardFn = void (*)(const PactForwardArgs& args, int64_t begin, int64_t end);

// grad_x[i] = grad_y[i] where mask == pass, else 0. Returns the sum of grad_y
// over mask == clipped, accumulated in double.
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

// The best variant for this CPU (PACTQ_ISA=ref forces the scalar one).
PactForwardFn best_pact_forward();
PactBackwardFn best_pact_backward();

}  // namespace pactq::quant::kernels
