// Fused PACT kernels for CUDA (pact_cuda.cu): one kernel each way, the CUDA
// twin of pact_kernel.h. Built only when CMake finds a CUDA LibTorch and a
// CUDA compiler (PACTQ_WITH_CUDA_KERNELS); this header needs neither, so
// pact.cpp includes it in every build.
//
// Same arithmetic and mask layout as the CPU kernels: y = rint(c * scale) *
// inv_scale on c = clamp(x, 0, alpha) (no FMA can form: nothing is added), and
// per group of 8 elements one byte of "passes" bits and one of "clipped"
// bits. alpha, scale and inv_scale are read from device memory, so launching
// never waits for the device.
#pragma once
#include <cstdint>

namespace pactq::quant::cuda {

struct PactCudaForwardArgs {
  const float* x;
  float* y;
  uint8_t* mask;           // kernels::pact_mask_bytes(numel) bytes
  const float* alpha;      // device scalars
  const float* scale;      // n / alpha (unused when !quantize)
  const float* inv_scale;  // alpha / n (unused when !quantize)
  int64_t numel;
  bool quantize;
};

// `stream` is a cudaStream_t (void* keeps CUDA headers out of this header).
void pact_forward(const PactCudaForwardArgs& args, void* stream);

// How many partial sums pact_backward writes for `numel` elements: a function
// of numel only, so the alpha gradient's summation order never changes.
int64_t pact_backward_partials(int64_t numel);

// grad_x[i] = grad_y[i] where i passes, else 0; partials[b] = the sum, in
// double, of grad_y over block b's clipped elements.
void pact_backward(const float* grad_y, const uint8_t* mask, float* grad_x, double* partials,
                   int64_t numel, void* stream);

}  // namespace pactq::quant::cuda
