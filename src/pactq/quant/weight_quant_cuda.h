// Fused weight quantizers for CUDA (weight_quant_cuda.cu): DoReFa and SAWB in
// two launches each way instead of ~25 small ATen ops per layer and step, the
// CUDA twin of the fused CPU DoReFa in weight_quant.cpp. Built only with
// PACTQ_WITH_CUDA_KERNELS (see pact_cuda.h); this header needs no CUDA.
//
// Each quantizer is a per-layer statistic followed by an elementwise pass.
// Launch 1 writes one partial statistic per block; launch 2 has every block
// reduce those partials in the same fixed order (so every block, and every
// run, sees the same statistic) and then does its share of the elements. The
// statistic stays in device memory: nothing waits for the device, and the
// whole step can be captured in a CUDA graph. Products and quotients use the
// _rn intrinsics so that no FMA forms where the CPU rounds twice.
#pragma once
#include <cstdint>

namespace pactq::quant::cuda {

// Scratch each function needs, in elements of the type it names, for
// `numel` weights: a function of numel only (fixed reduction order).
int64_t dorefa_forward_scratch_floats(int64_t numel);
int64_t dorefa_backward_scratch_doubles(int64_t numel);
int64_t sawb_forward_scratch_doubles(int64_t numel);

// DoReFa, bits >= 2 (n = 2^bits - 1): t = tanh(w); m = max(max|t|, tiny), NaN
// when any t is NaN; wq = 2 rint((t / (2m) + 1/2) n) / n - 1. Writes t (kept
// for the backward), wq and m (one float in device memory).
void dorefa_forward(const float* w, float* t, float* wq, float* m, float* scratch, int64_t numel,
                    int64_t n, void* stream);

// Its gradient (straight-through over rint only; see weight_quant.h):
// grad_w = (g / m + [|t| == m] sign(t) dm) (1 - t^2) with
// dm = -(sum g t) / m^2 / count(|t| == m), 0 when m is the floor.
void dorefa_backward(const float* grad, const float* t, const float* m, float* grad_w,
                     double* scratch, int64_t numel, void* stream);

// SAWB, bits 2..8: a = c1 sqrt(E[w^2]) - c2 E[|w|], max|w| when that is not
// positive, floored at tiny; wq = a (2q - n) / n with
// q = rint((clamp(w, -a, a) / a + 1) (n / 2)). Writes wq (a itself is not
// needed after). The gradient is straight-through: nothing to launch.
void sawb_forward(const float* w, float* wq, double* scratch, int64_t numel, int64_t n, double c1,
                  double c2, void* stream);

}  // namespace pactq::quant::cuda
