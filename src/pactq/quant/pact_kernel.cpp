#include "pactq/quant/pact_kernel.h"

#include <cmath>

#include "pactq/common/cpu_isa.h"
#include "pactq/quant/pact.h"

#if defined(__x86_64__)
#include <immintrin.h>
#endif

namespace pactq::quant::kernels {

void pact_forward_scalar(const PactForwardArgs& a, int64_t begin, int64_t end) {
  for (int64_t i = begin; i < end; ++i) {
    const float v = a.x[i];
    const float clipped = std::fmin(std::fmax(v, 0.0f), a.alpha);
    a.y[i] = a.quantize ? std::nearbyint(clipped * a.scale) * a.inv_scale : clipped;
    a.mask[i] = v < 0.0f ? kPactBelow : (v < a.alpha ? kPactPass : kPactClipped);
  }
}

double pact_backward_scalar(const float* grad_y, const uint8_t* mask, float* grad_x, int64_t begin,
                            int64_t end) {
  double clipped_sum = 0.0;
  for (int64_t i = begin; i < end; ++i) {
    grad_x[i] = mask[i] == kPactPass ? grad_y[i] : 0.0f;
    if (mask[i] == kPactClipped) clipped_sum += grad_y[i];
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
  const __m256 one = _mm256_set1_ps(1.0f);
  int64_t i = begin;
  for (; i + 8 <= end; i += 8) {
    const __m256 v = _mm256_loadu_ps(a.x + i);
    // min/max with v first: a NaN input propagates like std::fmin/fmax do not,
    // but both paths give 0 for the mask and the loss check catches it.
    __m256 c = _mm256_min_ps(_mm256_max_ps(v, zero), alpha);
    if (a.quantize) {
      c = _mm256_mul_ps(
          _mm256_round_ps(_mm256_mul_ps(c, scale), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC),
          inv);
    }
    _mm256_storeu_ps(a.y + i, c);
    // region = (v >= 0) + (v >= alpha)
    const __m256 ge0 = _mm256_and_ps(_mm256_cmp_ps(v, zero, _CMP_GE_OQ), one);
    const __m256 gea = _mm256_and_ps(_mm256_cmp_ps(v, alpha, _CMP_GE_OQ), one);
    const __m256i region = _mm256_cvtps_epi32(_mm256_add_ps(ge0, gea));
    const __m128i lo = _mm256_castsi256_si128(region);
    const __m128i hi = _mm256_extracti128_si256(region, 1);
    const __m128i packed16 = _mm_packus_epi32(lo, hi);
    const __m128i packed8 = _mm_packus_epi16(packed16, packed16);
    _mm_storel_epi64(reinterpret_cast<__m128i*>(a.mask + i), packed8);
  }
  pact_forward_scalar(a, i, end);
}

__attribute__((target("avx2"))) double pact_backward_avx2(const float* grad_y, const uint8_t* mask,
                                                          float* grad_x, int64_t begin,
                                                          int64_t end) {
  const __m256i pass = _mm256_set1_epi32(kPactPass);
  const __m256i clipped = _mm256_set1_epi32(kPactClipped);
  __m256d sum_lo = _mm256_setzero_pd();
  __m256d sum_hi = _mm256_setzero_pd();
  int64_t i = begin;
  for (; i + 8 <= end; i += 8) {
    const __m256 g = _mm256_loadu_ps(grad_y + i);
    const __m256i m =
        _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(mask + i)));
    const __m256 is_pass = _mm256_castsi256_ps(_mm256_cmpeq_epi32(m, pass));
    const __m256 is_clipped = _mm256_castsi256_ps(_mm256_cmpeq_epi32(m, clipped));
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

namespace {
bool use_avx2() {
  static const bool enabled = !isa_forced_reference() && cpu_has_avx2_fma();
  return enabled;
}
}  // namespace

PactForwardFn best_pact_forward() {
#if defined(__x86_64__)
  if (use_avx2()) return pact_forward_avx2;
#endif
  return pact_forward_scalar;
}

PactBackwardFn best_pact_backward() {
#if defined(__x86_64__)
  if (use_avx2()) return pact_backward_avx2;
#endif
  return pact_backward_scalar;
}

}  // namespace pactq::quant::kernels
