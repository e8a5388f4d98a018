// The fused conv epilogue for 16 output channels in one zmm, shared by the
// AVX-512 kernels; bit-identical to the scalar epilogue_store (mul then add,
// no FMA: include it only from files compiled with -ffp-contract=off).
#pragma once
#include <immintrin.h>

#include <type_traits>

#include "pactq/runtime/kernels/kernels.h"

namespace pactq::rt::kernels {

// 16 codes (u8, lanes in `lanes`, others 0) as floats times `scale`, as
// load_value() and residual_value() compute them.
static inline __m512 dequantize16(const uint8_t* p, float scale, __mmask16 lanes) {
  const __m128i b = _mm_maskz_loadu_epi8(lanes, p);
  return _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(b)), _mm512_set1_ps(scale));
}

// requantize() on 16 values, the lanes in `lanes` stored as bytes: t = y * inv
// clamped to [0, n] (NaN -> 0: max_ps returns its second operand for a NaN),
// rounded half to even and converted in one instruction.
static inline void store_codes16(__m512 y, float inv, int n, uint8_t* dst, __mmask16 lanes) {
  __m512 t = _mm512_mul_ps(y, _mm512_set1_ps(inv));
  t = _mm512_max_ps(t, _mm512_setzero_ps());
  t = _mm512_min_ps(t, _mm512_set1_ps(static_cast<float>(n)));
  const __m512i q = _mm512_cvt_roundps_epi32(t, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  _mm_mask_storeu_epi8(dst, lanes, _mm512_cvtusepi32_epi8(q));
}

// float_activation() on 16 values.
static inline __m512 float_activation16(__m512 y, FloatAct act, float alpha) {
  if (act == FloatAct::kNone) return y;
  y = _mm512_max_ps(y, _mm512_setzero_ps());
  if (act == FloatAct::kClip) y = _mm512_min_ps(y, _mm512_set1_ps(alpha));
  return y;
}

// The residual's values at element `idx` of its image, lanes in `lanes`
// (others 0): codes dequantized as residual_value() does, or floats.
static inline __m512 residual16(const Epilogue& e, size_t idx, __mmask16 lanes) {
  if (e.res_codes)
    return dequantize16(static_cast<const uint8_t*>(e.res) + idx, e.res_scale, lanes);
  return _mm512_maskz_loadu_ps(lanes, static_cast<const float*>(e.res) + idx);
}

// The per-channel constants of epilogue16 for channels c0..c0+15, loaded
// once for all the pixels of a block (the epilogue's byte stores may alias
// anything, so the compiler cannot hoist these loads itself).
struct Epilogue16Channels {
  __m512 scale, bias;
  __mmask16 valid;
  int c0;
};

static inline Epilogue16Channels epilogue16_channels(const Epilogue& e, int c0, __mmask16 valid) {
  return {_mm512_maskz_loadu_ps(valid, e.scale + c0), _mm512_maskz_loadu_ps(valid, e.bias + c0),
          valid, c0};
}

// Epilogue for 16 channels ch.c0.. of one pixel (acc: the int32 sums
// converted to float, or the float dot products); `ch.valid` (a lane mask)
// says which exist (the last block of a group may be partial).
static inline void epilogue16(const Epilogue& e, const Epilogue16Channels& ch, __m512 acc, int oh,
                              int ow, void* out, size_t idx) {
  const int c0 = ch.c0;
  const __mmask16 valid = ch.valid;
  __m512 y = _mm512_mul_ps(ch.scale, acc);
  y = _mm512_add_ps(y, ch.bias);
  if (e.res) {
    const int rc0 = c0 - e.res_pad;
    const size_t rpix = (static_cast<size_t>(oh) * e.res_stride * e.res_w +
                         static_cast<size_t>(ow) * e.res_stride) *
                        e.res_c;
    __m512 r;
    if (valid == 0xffff && rc0 >= 0 && rc0 + 16 <= e.res_c) {
      r = residual16(e, rpix + rc0, valid);
    } else {
      // A block that straddles the residual's channel range (a shortcut that
      // pads channels, e.g. ResNet20's option A): load the lanes that exist
      // and expand them into place, zeros elsewhere.
      const int lo = rc0 < 0 ? -rc0 : 0;
      const int hi = e.res_c - rc0 < 16 ? e.res_c - rc0 : 16;
      r = _mm512_setzero_ps();
      if (lo < hi) {
        const __mmask16 have = static_cast<__mmask16>(((1u << (hi - lo)) - 1u) & (valid >> lo));
        r = _mm512_maskz_expand_ps(static_cast<__mmask16>(have << lo),
                                   residual16(e, rpix + rc0 + lo, have));
      }
    }
    y = _mm512_add_ps(y, r);
  }
  if (e.out_codes) {
    store_codes16(y, e.inv, e.n_out, static_cast<uint8_t*>(out) + idx, valid);
  } else {
    _mm512_mask_storeu_ps(static_cast<float*>(out) + idx, valid,
                          float_activation16(y, e.act, e.alpha));
  }
}

// Runs `body(store)` for the pixels of one block of channels ch.c0.., where
// `store(acc, oh, ow, idx)` is epilogue16 specialised for the block: the
// residual's form (none, whole codes, whole floats, any other) and the
// output's (codes or floats) decided once, not per pixel, and the
// epilogue's fields held in locals (the stores could alias `e`, so through
// the reference every pixel would reload them). `body` should keep its own
// loop bounds in locals for the same reason.
template <class Body>
static inline void with_epilogue16_form(const Epilogue& e, const Epilogue16Channels& ch, void* out,
                                        Body&& body) {
  ResForm form = residual_form(e, ch.c0, 16);
  if (form != ResForm::kNone && ch.valid != 0xffff) form = ResForm::kAny;  // a partial block
  const int rc0 = ch.c0 - e.res_pad;
  const float inv = e.inv, alpha = e.alpha, res_scale = e.res_scale;
  const int n_out = e.n_out;
  const FloatAct act = e.act;
  const size_t res_row = static_cast<size_t>(e.res_stride) * e.res_w * e.res_c;
  const size_t res_px = static_cast<size_t>(e.res_stride) * e.res_c;
  const void* const res = e.res;
  const __m512 scale = ch.scale, bias = ch.bias;
  const __mmask16 valid = ch.valid;
  auto run = [&](auto form_c, auto codes_c) {
    constexpr ResForm kForm = decltype(form_c)::value;
    constexpr bool kCodes = decltype(codes_c)::value;
    body([&](__m512 acc, int oh, int ow, size_t idx) {
      if constexpr (kForm == ResForm::kAny) {
        epilogue16(e, ch, acc, oh, ow, out, idx);
      } else {
        __m512 y = _mm512_add_ps(_mm512_mul_ps(scale, acc), bias);
        if constexpr (kForm != ResForm::kNone) {
          const size_t ri = oh * res_row + ow * res_px + rc0;
          if constexpr (kForm == ResForm::kCodes) {
            y = _mm512_add_ps(
                y, dequantize16(static_cast<const uint8_t*>(res) + ri, res_scale, valid));
          } else {
            y = _mm512_add_ps(y, _mm512_loadu_ps(static_cast<const float*>(res) + ri));
          }
        }
        if constexpr (kCodes) {
          store_codes16(y, inv, n_out, static_cast<uint8_t*>(out) + idx, valid);
        } else {
          _mm512_mask_storeu_ps(static_cast<float*>(out) + idx, valid,
                                float_activation16(y, act, alpha));
        }
      }
    });
  };
  using std::integral_constant;
  const bool codes = e.out_codes;
  switch (form) {
    case ResForm::kNone:
      return codes ? run(integral_constant<ResForm, ResForm::kNone>{}, std::true_type{})
                   : run(integral_constant<ResForm, ResForm::kNone>{}, std::false_type{});
    case ResForm::kCodes:
      return codes ? run(integral_constant<ResForm, ResForm::kCodes>{}, std::true_type{})
                   : run(integral_constant<ResForm, ResForm::kCodes>{}, std::false_type{});
    case ResForm::kFloats:
      return codes ? run(integral_constant<ResForm, ResForm::kFloats>{}, std::true_type{})
                   : run(integral_constant<ResForm, ResForm::kFloats>{}, std::false_type{});
    default:  // epilogue16 decides per pixel (the output form too)
      return run(integral_constant<ResForm, ResForm::kAny>{}, std::true_type{});
  }
}

static inline void epilogue16(const Epilogue& e, __m512 acc, int oh, int ow, int c0,
                              __mmask16 valid, void* out, size_t idx) {
  epilogue16(e, epilogue16_channels(e, c0, valid), acc, oh, ow, out, idx);
}

}  // namespace pactq::rt::kernels
