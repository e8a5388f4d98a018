// Element-wise ops and max pooling on AVX2, 8 float lanes (32 code lanes for
// max pooling codes) at a time, bit-identical to kernels/ref/ops.cpp: the same
// mul-then-add order (this file is compiled with -ffp-contract=off), the same
// requantize() and activation, the scalar helpers for the tails.
#include <immintrin.h>

#include <algorithm>

#include "pactq/runtime/kernels/avx2/epilogue_avx2.h"
#include "pactq/runtime/kernels/kernels.h"

namespace pactq::rt::kernels {

namespace {

// load_value() of elements i..i+7.
inline __m256 load8(const TensorRef& t, size_t i) {
  if (t.codes) return dequantize8(static_cast<const uint8_t*>(t.data) + i, t.scale);
  return _mm256_loadu_ps(static_cast<const float*>(t.data) + i);
}

// store_value() of elements i..i+7.
inline void store8(const OutputRef& o, size_t i, __m256 y) {
  if (o.codes) {
    store_codes8(y, o.inv, o.n_out, static_cast<uint8_t*>(o.data) + i);
  } else {
    _mm256_storeu_ps(static_cast<float*>(o.data) + i, float_activation8(y, o.act, o.alpha));
  }
}

}  // namespace

void affine_values_avx2(size_t pixels, int c, const TensorRef& x, const float* scale,
                        const float* bias, const OutputRef& out) {
  const int c8 = c - c % 8;
  for (size_t p = 0; p < pixels; ++p) {
    const size_t row = p * c;
    for (int k = 0; k < c8; k += 8) {
      __m256 y = _mm256_mul_ps(_mm256_loadu_ps(scale + k), load8(x, row + k));
      y = _mm256_add_ps(y, _mm256_loadu_ps(bias + k));
      store8(out, row + k, y);
    }
    for (int k = c8; k < c; ++k) {
      float y = scale[k] * load_value(x, row + k);
      y = y + bias[k];
      store_value(out, row + k, y);
    }
  }
}

void add_values_avx2(size_t n, const TensorRef& a, const TensorRef& b, const OutputRef& out) {
  const size_t n8 = n - n % 8;
  for (size_t i = 0; i < n8; i += 8) store8(out, i, _mm256_add_ps(load8(a, i), load8(b, i)));
  for (size_t i = n8; i < n; ++i) store_value(out, i, load_value(a, i) + load_value(b, i));
}

void max_pool_rows_avx2(const PoolGeom& g, const void* in, bool codes, void* out, int oh0,
                        int oh1) {
  for_each_pool_window(g, oh0, oh1, [&](const PoolWindow& win) {
    const int h0 = win.h0, h1 = win.h1, w0 = win.w0, w1 = win.w1;
    const size_t o = win.out;
    auto at = [&](int h, int w) { return win.at(g, h, w); };
    int c = 0;
    if (codes) {
      const uint8_t* x = static_cast<const uint8_t*>(in);
      uint8_t* y = static_cast<uint8_t*>(out);
      for (; c + 32 <= g.c; c += 32) {
        __m256i m = _mm256_setzero_si256();
        for (int h = h0; h < h1; ++h)
          for (int w = w0; w < w1; ++w)
            m = _mm256_max_epu8(
                m, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x + at(h, w) + c)));
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(y + o + c), m);
      }
      for (; c < g.c; ++c) {
        uint8_t m = 0;
        for (int h = h0; h < h1; ++h)
          for (int w = w0; w < w1; ++w) m = std::max(m, x[at(h, w) + c]);
        y[o + c] = m;
      }
    } else {
      const float* x = static_cast<const float*>(in);
      float* y = static_cast<float*>(out);
      for (; c + 8 <= g.c; c += 8) {
        // max_ps(v, m) = v > m ? v : m, the reference's comparison (a NaN keeps m).
        __m256 m = _mm256_set1_ps(-INFINITY);
        for (int h = h0; h < h1; ++h)
          for (int w = w0; w < w1; ++w) m = _mm256_max_ps(_mm256_loadu_ps(x + at(h, w) + c), m);
        _mm256_storeu_ps(y + o + c, m);
      }
      for (; c < g.c; ++c) {
        float m = -INFINITY;
        for (int h = h0; h < h1; ++h)
          for (int w = w0; w < w1; ++w) {
            const float v = x[at(h, w) + c];
            m = v > m ? v : m;
          }
        y[o + c] = m;
      }
    }
  });
}

}  // namespace pactq::rt::kernels
