// Element-wise affine and add, and max pooling, on AVX-512: 16 float lanes
// (64 code lanes for max pooling codes) at a time, bit-identical to
// kernels/ref/ops.cpp: the same mul-then-add order (this file is compiled with
// -ffp-contract=off), requantize()'s clamp and round half to even, the same
// activation. The input and output forms (codes or floats) are template
// parameters, so the loops carry no per-vector branches; the tail of a row
// (or of the tensor) uses masked loads and stores. PreAct-ResNet18's
// pre-activation BN runs here as an affine node on every block.
#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <type_traits>

#include "pactq/runtime/kernels/avx512/epilogue_avx512.h"
#include "pactq/runtime/kernels/kernels.h"

namespace pactq::rt::kernels {
namespace {

inline __mmask16 lanes(int n) {
  return n >= 16 ? static_cast<__mmask16>(0xffff) : static_cast<__mmask16>((1u << n) - 1u);
}

// load_value() of 16 elements (those outside `m` read as 0).
template <bool kCodes>
inline __m512 load16(const TensorRef& t, size_t i, __mmask16 m) {
  if constexpr (kCodes) {
    return dequantize16(static_cast<const uint8_t*>(t.data) + i, t.scale, m);
  } else {
    return _mm512_maskz_loadu_ps(m, static_cast<const float*>(t.data) + i);
  }
}

// store_value() of 16 elements (those in `m`).
template <bool kCodes>
inline void store16(const OutputRef& o, size_t i, __m512 y, __mmask16 m) {
  if constexpr (kCodes) {
    store_codes16(y, o.inv, o.n_out, static_cast<uint8_t*>(o.data) + i, m);
  } else {
    _mm512_mask_storeu_ps(static_cast<float*>(o.data) + i, m,
                          float_activation16(y, o.act, o.alpha));
  }
}

// Calls fn with std::true_type or std::false_type as `codes` says: the loops
// below take each operand's form as a template parameter.
template <class Fn>
inline void with_form(bool codes, Fn&& fn) {
  if (codes) {
    fn(std::true_type{});
  } else {
    fn(std::false_type{});
  }
}

template <bool kInCodes, bool kOutCodes>
void affine_rows(size_t pixels, int c, const TensorRef& x, const float* scale, const float* bias,
                 const OutputRef& out) {
  for (size_t p = 0; p < pixels; ++p) {
    const size_t row = p * c;
    for (int k = 0; k < c; k += 16) {
      const __mmask16 m = lanes(c - k);
      __m512 y =
          _mm512_mul_ps(_mm512_maskz_loadu_ps(m, scale + k), load16<kInCodes>(x, row + k, m));
      y = _mm512_add_ps(y, _mm512_maskz_loadu_ps(m, bias + k));
      store16<kOutCodes>(out, row + k, y, m);
    }
  }
}

template <bool kACodes, bool kBCodes, bool kOutCodes>
void add_all(size_t n, const TensorRef& a, const TensorRef& b, const OutputRef& out) {
  for (size_t i = 0; i < n; i += 16) {
    const __mmask16 m = lanes(static_cast<int>(n - i < 16 ? n - i : 16));
    store16<kOutCodes>(out, i, _mm512_add_ps(load16<kACodes>(a, i, m), load16<kBCodes>(b, i, m)),
                       m);
  }
}

}  // namespace

void affine_values_avx512(size_t pixels, int c, const TensorRef& x, const float* scale,
                          const float* bias, const OutputRef& out) {
  with_form(x.codes, [&](auto in_codes) {
    with_form(out.codes, [&](auto out_codes) {
      affine_rows<decltype(in_codes)::value, decltype(out_codes)::value>(pixels, c, x, scale, bias,
                                                                         out);
    });
  });
}

void add_values_avx512(size_t n, const TensorRef& a, const TensorRef& b, const OutputRef& out) {
  with_form(a.codes, [&](auto a_codes) {
    with_form(b.codes, [&](auto b_codes) {
      with_form(out.codes, [&](auto out_codes) {
        add_all<decltype(a_codes)::value, decltype(b_codes)::value, decltype(out_codes)::value>(
            n, a, b, out);
      });
    });
  });
}

void max_pool_rows_avx512(const PoolGeom& g, const void* in, bool codes, void* out, int oh0,
                          int oh1) {
  for_each_pool_window(g, oh0, oh1, [&](const PoolWindow& win) {
    const int h0 = win.h0, h1 = win.h1, w0 = win.w0, w1 = win.w1;
    const size_t o = win.out;
    auto at = [&](int h, int w) { return win.at(g, h, w); };
    if (codes) {
      const uint8_t* x = static_cast<const uint8_t*>(in);
      uint8_t* y = static_cast<uint8_t*>(out);
      for (int c = 0; c < g.c; c += 64) {
        const int n = g.c - c < 64 ? g.c - c : 64;
        const __mmask64 m = n == 64 ? ~__mmask64{0} : ((__mmask64{1} << n) - 1);
        __m512i v = _mm512_setzero_si512();
        for (int h = h0; h < h1; ++h)
          for (int w = w0; w < w1; ++w)
            v = _mm512_max_epu8(v, _mm512_maskz_loadu_epi8(m, x + at(h, w) + c));
        _mm512_mask_storeu_epi8(y + o + c, m, v);
      }
    } else {
      const float* x = static_cast<const float*>(in);
      float* y = static_cast<float*>(out);
      for (int c = 0; c < g.c; c += 16) {
        const __mmask16 m = lanes(g.c - c);
        // max_ps(v, m) = v > m ? v : m, the reference's comparison (a NaN keeps m).
        __m512 v = _mm512_set1_ps(-INFINITY);
        for (int h = h0; h < h1; ++h)
          for (int w = w0; w < w1; ++w)
            v = _mm512_max_ps(_mm512_maskz_loadu_ps(m, x + at(h, w) + c), v);
        _mm512_mask_storeu_ps(y + o + c, m, v);
      }
    }
  });
}

}  // namespace pactq::rt::kernels
