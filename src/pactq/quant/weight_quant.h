// Weight quantizers: DoReFa (as used by PACT) and SAWB (the follow-up paper).
// Both produce values on the odd-integer grid w_q = scale * (2q - n) / n with
// integer codes q in 0..n, n = 2^bits - 1 and one scale per layer, which is
// exactly what the exporter stores and the integer runtime multiplies.
//
// DoReFa, bits >= 2:  t = tanh(w), u = t / (2 max|t|) + 1/2, q = round(u n), scale = 1.
//   Gradient: straight-through over round only, so it flows through tanh and
//   the max normalisation (the derivative of the formula, as in DoReFa-Net).
// DoReFa, bits == 1:  w_q = sign(w) * mean|w| (w >= 0 counts as +), scale = mean|w|.
//   Gradient: straight-through (identity).
// SAWB, bits 2..8:    a = c1 sqrt(E[w^2]) - c2 E[|w|] (from the current weights,
//   every call), q = round((clamp(w, -a, a) / a + 1) / 2 * n), scale = a.
//   Gradient: straight-through (identity); a is a statistic, not learned.
#pragma once
#include <ATen/ATen.h>

#include <string>

namespace pactq::quant {

enum class WeightQuantKind { kDoReFa, kSawb };

WeightQuantKind parse_weight_quant(const std::string& name);  // "dorefa" | "sawb"
std::string to_string(WeightQuantKind kind);

// Fake-quantized weight with the gradients above; bits == 32 returns w.
// DoReFa (>= 2 bits) on float32 CPU tensors runs as one fused autograd node
// (same rounding rule as weight_codes). On float32 CUDA tensors, in a build
// with the CUDA kernels (pact_cuda_kernels_built()), DoReFa and SAWB run as
// fused kernels (weight_quant_cuda.h); elsewhere as the ATen composite.
at::Tensor quantize_weight(const at::Tensor& w, int bits, WeightQuantKind kind);
// The ATen composite of DoReFa (>= 2 bits): the definition the fused path is
// tested against.
at::Tensor quantize_weight_composite(const at::Tensor& w, int bits);

// Integer form of the same quantization, for export: codes (uint8, same shape
// as w) and the per-layer scale; dequantize(codes) == quantize_weight(w).
struct WeightCodes {
  at::Tensor codes;
  double scale = 1.0;
  int bits = 0;
};
WeightCodes weight_codes(const at::Tensor& w, int bits, WeightQuantKind kind);
at::Tensor dequantize(const WeightCodes& codes);

// SAWB clipping coefficients (c1, c2) for a bit width. 2, 3, 4, 5 and 8 bits are
// the published fits; 6 and 7 interpolate linearly between 5 and 8 bits.
std::pair<double, double> sawb_coefficients(int bits);

// Straight-through rounding: forward round-half-even, backward identity.
at::Tensor round_ste(const at::Tensor& x);

}  // namespace pactq::quant
