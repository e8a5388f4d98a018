// The fused conv epilogue for 8 output channels in one ymm, shared by the AVX2
// kernels; bit-identical to the scalar epilogue_store (mul then add, no FMA:
// include it only from files compiled with -ffp-contract=off).
#pragma once
#include <immintrin.h>

#include "pactq/runtime/kernels/kernels.h"

namespace pactq::rt::kernels {

// requantize() on 8 values, as int32 codes: t = y * inv, min with n first
// (min_ps returns its second operand, t, for a NaN), then the conversion
// rounds in the current mode as nearbyint does (half to even by default).
// Negative t, NaN and -inf (converted to INT_MIN) become 0 in the saturating
// packs that follow, as the clamp to [0, n] makes them in the scalar rule.
static inline __m256i code_lanes8(__m256 y, __m256 inv, __m256 n) {
  return _mm256_cvtps_epi32(_mm256_min_ps(n, _mm256_mul_ps(y, inv)));
}

// 8 codes as 8 bytes.
static inline void store_code_lanes8(__m256i v, uint8_t* dst) {
  const __m128i w = _mm_packs_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
  _mm_storel_epi64(reinterpret_cast<__m128i*>(dst), _mm_packus_epi16(w, w));
}

// 16 codes (channels c..c+7 in lo, c+8..c+15 in hi) as 16 bytes: one pack
// pair and one permute instead of two of each.
static inline void store_code_lanes16(__m256i lo, __m256i hi, uint8_t* dst) {
  // Per 128-bit lane: [lo0-3 hi0-3] then [lo4-7 hi4-7] as int16, then as
  // bytes whose dwords are d0 = lo0-3, d1 = hi0-3, d4 = lo4-7, d5 = hi4-7.
  const __m256i w = _mm256_packs_epi32(lo, hi);
  const __m256i b = _mm256_packus_epi16(w, w);
  const __m256i o = _mm256_permutevar8x32_epi32(b, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
  _mm_storeu_si128(reinterpret_cast<__m128i*>(dst), _mm256_castsi256_si128(o));
}

static inline void store_codes8(__m256 y, float inv, int n, uint8_t* dst) {
  store_code_lanes8(code_lanes8(y, _mm256_set1_ps(inv), _mm256_set1_ps(static_cast<float>(n))),
                    dst);
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

// Scale, bias and residual of 8 consecutive output channels c0..c0+7 of one
// pixel (acc: the int32 sums converted to float, or the float dot products).
static inline __m256 epilogue_value8(const Epilogue& e, __m256 acc, __m256 scale, __m256 bias,
                                     int oh, int ow, int c0) {
  __m256 y = _mm256_add_ps(_mm256_mul_ps(scale, acc), bias);
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
    } else if (rc0 + 8 <= 0 || rc0 >= e.res_c) {
      r = _mm256_setzero_ps();  // channels of the zero padding (option-A shortcuts)
    } else {
      alignas(32) float tmp[8];
      for (int i = 0; i < 8; ++i) tmp[i] = residual_value(e, oh, ow, c0 + i);
      r = _mm256_load_ps(tmp);
    }
    y = _mm256_add_ps(y, r);
  }
  return y;
}

// Vector epilogue for 8 consecutive output channels c0..c0+7 of one pixel.
static inline void epilogue8(const Epilogue& e, __m256 acc, int oh, int ow, int c0, void* out,
                             size_t idx) {
  const __m256 y = epilogue_value8(e, acc, _mm256_loadu_ps(e.scale + c0),
                                   _mm256_loadu_ps(e.bias + c0), oh, ow, c0);
  if (e.out_codes) {
    store_codes8(y, e.inv, e.n_out, static_cast<uint8_t*>(out) + idx);
  } else {
    _mm256_storeu_ps(static_cast<float*>(out) + idx, float_activation8(y, e.act, e.alpha));
  }
}

}  // namespace pactq::rt::kernels
