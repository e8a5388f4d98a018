// The fused conv epilogue for 8 output channels in one ymm, shared by the AVX2
// kernels; bit-identical to the scalar epilogue_store (mul then add, no FMA:
// include it only from files compiled with -ffp-contract=off).
#pragma once
#include <immintrin.h>

#include "pactq/runtime/kernels/kernels.h"

namespace pactq::rt::kernels {

// requantize() on 8 values: t = y * inv clamped to [0, n] (NaN -> 0: max_ps
// returns its second operand for a NaN), rounded half to even, stored as 8 bytes.
static inline void store_codes8(__m256 y, float inv, int n, uint8_t* dst) {
  __m256 t = _mm256_mul_ps(y, _mm256_set1_ps(inv));
  t = _mm256_max_ps(t, _mm256_setzero_ps());
  t = _mm256_min_ps(t, _mm256_set1_ps(static_cast<float>(n)));
  t = _mm256_round_ps(t, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  const __m256i v = _mm256_cvttps_epi32(t);
  const __m128i w = _mm_packs_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
  _mm_storel_epi64(reinterpret_cast<__m128i*>(dst), _mm_packus_epi16(w, w));
}

// float_activation() on 8 values.
static inline __m256 float_activation8(__m256 y, FloatAct act, float alpha) {
  if (act == FloatAct::kNone) return y;
  y = _mm256_max_ps(y, _mm256_setzero_ps());
  if (act == FloatAct::kClip) y = _mm256_min_ps(y, _mm256_set1_ps(alpha));
  return y;
}

// 8 codes (u8) as floats times `scale`, as load_value() computes them.
static inline __m256 dequantize8(const uint8_t* p, float scale) {
  const __m128i b = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(p));
  return _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(b)), _mm256_set1_ps(scale));
}

// Vector epilogue for 8 consecutive output channels c0..c0+7 of one pixel
// (acc: the int32 sums converted to float, or the float dot products).
static inline void epilogue8(const Epilogue& e, __m256 acc, int oh, int ow, int c0, void* out,
                             size_t idx) {
  __m256 y = _mm256_mul_ps(_mm256_loadu_ps(e.scale + c0), acc);
  y = _mm256_add_ps(y, _mm256_loadu_ps(e.bias + c0));
  if (e.res) {
    const int rc0 = c0 - e.res_pad;
    __m256 r;
    if (rc0 >= 0 && rc0 + 8 <= e.res_c) {
      const size_t ri = (static_cast<size_t>(oh) * e.res_stride * e.res_w +
                         static_cast<size_t>(ow) * e.res_stride) *
                            e.res_c +
                        rc0;
      if (e.res_codes) {
        r = dequantize8(static_cast<const uint8_t*>(e.res) + ri, e.res_scale);
      } else {
        r = _mm256_loadu_ps(static_cast<const float*>(e.res) + ri);
      }
    } else {
      alignas(32) float tmp[8];
      for (int i = 0; i < 8; ++i) tmp[i] = residual_value(e, oh, ow, c0 + i);
      r = _mm256_load_ps(tmp);
    }
    y = _mm256_add_ps(y, r);
  }
  if (e.out_codes) {
    store_codes8(y, e.inv, e.n_out, static_cast<uint8_t*>(out) + idx);
  } else {
    _mm256_storeu_ps(static_cast<float*>(out) + idx, float_activation8(y, e.act, e.alpha));
  }
}

}  // namespace pactq::rt::kernels
