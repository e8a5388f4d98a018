#include "pactq/quant/pact_kernel.h"

#include <cmath>

#include "pactq/common/cpu_isa.h"
#include "pactq/quant/pact.h"

#if defined(__x86_64__)
#include <immintrin.h>
#endif

namespace pactq::quant::kernels {

namespace {

// Mask layout: elements in groups of 8; group g owns bytes 2g (bit k: element
// 8g + k passes) and 2g + 1 (bit k: element 8g + k is clipped): exactly what
// a vector compare's movemask gives, so the SIMD kernels need no bit shuffling.
inline int region_at(const uint8_t* mask, int64_t i) {
  const int64_t g = i >> 3;
  const int b = static_cast<int>(i & 7);
  const int pass = (mask[2 * g] >> b) & 1;
  const int clipped = (mask[2 * g + 1] >> b) & 1;
  return pass ? kPactPass : (clipped ? kPactClipped : kPactBelow);
}

}  // namespace

void pact_forward_scalar(const PactForwardArgs& a, int64_t begin, int64_t end) {
  unsigned pass = 0, clipped = 0;
  for (int64_t i = begin; i < end; ++i) {
    const float v = a.x[i];
    // Comparisons, not fmin/fmax: those drop a NaN, and a NaN must reach the
    // output (as on the composite path) so a diverging layer shows in the loss.
    const float c = v < 0.0f ? 0.0f : (v > a.alpha ? a.alpha : v);
    a.y[i] = a.quantize ? std::nearbyint(c * a.scale) * a.inv_scale : c;
    const unsigned bit = 1u << (i & 7);
    // (x >= 0) + (x >= alpha); NaN is below. alpha > 0, so clipped implies >= 0.
    if (v >= a.alpha) {
      clipped |= bit;
    } else if (v >= 0.0f) {
      pass |= bit;
    }
    if ((i & 7) == 7 || i + 1 == end) {
      a.mask[2 * (i >> 3)] = static_cast<uint8_t>(pass);
      a.mask[2 * (i >> 3) + 1] = static_cast<uint8_t>(clipped);
      pass = clipped = 0;
    }
  }
}

double pact_backward_scalar(const float* grad_y, const uint8_t* mask, float* grad_x, int64_t begin,
                            int64_t end) {
  double clipped_sum = 0.0;
  for (int64_t i = begin; i < end; ++i) {
    const int r = region_at(mask, i);
    grad_x[i] = r == kPactPass ? grad_y[i] : 0.0f;
    if (r == kPactClipped) clipped_sum += grad_y[i];
  }
  return clipped_sum;
}

#if defined(__x86_64__)
__attribute__((target("avx2"))) void pact_forward_avx2(const PactForwardArgs& a, int64_t begin,
                                                       int64_t end) {
  const __m256 zero = _mm256_setzero_ps();
  const __m256 alpha = _mm256_set1_ps(a.alpha);
  const __m256 scale = _mm256_set1_ps(a.scale);
  const __m256 inv = _mm256_set1_ps(a.inv_scale);
  int64_t i = begin;
  for (; i + 8 <= end; i += 8) {
    const __m256 v = _mm256_loadu_ps(a.x + i);
    // maxps/minps return their second operand when either is NaN: with v
    // second, a NaN input stays NaN in the output (as on the composite path);
    // its mask region is "below", so it passes no gradient.
    __m256 c = _mm256_min_ps(alpha, _mm256_max_ps(zero, v));
    if (a.quantize) {
      c = _mm256_mul_ps(
          _mm256_round_ps(_mm256_mul_ps(c, scale), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC),
          inv);
    }
    _mm256_storeu_ps(a.y + i, c);
    const int ge0 = _mm256_movemask_ps(_mm256_cmp_ps(v, zero, _CMP_GE_OQ));
    const int gea = _mm256_movemask_ps(_mm256_cmp_ps(v, alpha, _CMP_GE_OQ));
    a.mask[2 * (i >> 3)] = static_cast<uint8_t>(ge0 & ~gea);
    a.mask[2 * (i >> 3) + 1] = static_cast<uint8_t>(gea);
  }
  pact_forward_scalar(a, i, end);
}

__attribute__((target("avx2"))) double pact_backward_avx2(const float* grad_y, const uint8_t* mask,
                                                          float* grad_x, int64_t begin,
                                                          int64_t end) {
  const __m256i lane_bit = _mm256_setr_epi32(1, 2, 4, 8, 16, 32, 64, 128);
  __m256d sum_lo = _mm256_setzero_pd();
  __m256d sum_hi = _mm256_setzero_pd();
  int64_t i = begin;
  for (; i + 8 <= end; i += 8) {
    const __m256 g = _mm256_loadu_ps(grad_y + i);
    const __m256i pass_bits = _mm256_and_si256(_mm256_set1_epi32(mask[2 * (i >> 3)]), lane_bit);
    const __m256i clip_bits = _mm256_and_si256(_mm256_set1_epi32(mask[2 * (i >> 3) + 1]), lane_bit);
    const __m256 is_pass = _mm256_castsi256_ps(_mm256_cmpeq_epi32(pass_bits, lane_bit));
    const __m256 is_clipped = _mm256_castsi256_ps(_mm256_cmpeq_epi32(clip_bits, lane_bit));
    _mm256_storeu_ps(grad_x + i, _mm256_and_ps(g, is_pass));
    const __m256 gc = _mm256_and_ps(g, is_clipped);
    sum_lo = _mm256_add_pd(sum_lo, _mm256_cvtps_pd(_mm256_castps256_ps128(gc)));
    sum_hi = _mm256_add_pd(sum_hi, _mm256_cvtps_pd(_mm256_extractf128_ps(gc, 1)));
  }
  alignas(32) double lanes[4];
  _mm256_store_pd(lanes, _mm256_add_pd(sum_lo, sum_hi));
  double total = (lanes[0] + lanes[1]) + (lanes[2] + lanes[3]);
  return total + pact_backward_scalar(grad_y, mask, grad_x, i, end);
}
#endif

const PactKernelSet* pact_kernel_set(Isa isa) {
  static const PactKernelSet ref{Isa::kRef, pact_forward_scalar, pact_backward_scalar};
#if defined(__x86_64__)
  static const PactKernelSet avx2{Isa::kAvx2, pact_forward_avx2, pact_backward_avx2};
  static const bool has_avx2 = cpu_has_avx2_fma();
#endif
  if (isa == Isa::kRef) return &ref;
#if defined(__x86_64__)
  if (isa == Isa::kAvx2) return has_avx2 ? &avx2 : nullptr;
#endif
  return nullptr;
}

const PactKernelSet& selected_pact_kernel_set() {
  static const PactKernelSet* chosen = [] {
    for (int i = static_cast<int>(selected_isa()); i > 0; --i) {
      if (const PactKernelSet* s = pact_kernel_set(static_cast<Isa>(i))) return s;
    }
    return pact_kernel_set(Isa::kRef);
  }();
  return *chosen;
}

}  // namespace pactq::quant::kernels
