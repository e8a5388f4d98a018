// Pools and element-wise ops (scalar; memory bound, one implementation).
#include <algorithm>

#include "pactq/runtime/kernels/kernels.h"

namespace pactq::rt::kernels {

void max_pool_rows(const PoolGeom& g, const void* in, bool codes, void* out, int oh0, int oh1) {
  for (int oh = oh0; oh < oh1; ++oh)
    for (int ow = 0; ow < g.out_w; ++ow) {
      const int h0 = std::max(oh * g.sh - g.ph, 0), h1 = std::min(oh * g.sh - g.ph + g.kh, g.in_h);
      const int w0 = std::max(ow * g.sw - g.pw, 0), w1 = std::min(ow * g.sw - g.pw + g.kw, g.in_w);
      const size_t o = (static_cast<size_t>(oh) * g.out_w + ow) * g.c;
      for (int c = 0; c < g.c; ++c) {
        if (codes) {
          const uint8_t* x = static_cast<const uint8_t*>(in);
          uint8_t m = 0;
          for (int h = h0; h < h1; ++h)
            for (int w = w0; w < w1; ++w)
              m = std::max(m, x[(static_cast<size_t>(h) * g.in_w + w) * g.c + c]);
          static_cast<uint8_t*>(out)[o + c] = m;
        } else {
          const float* x = static_cast<const float*>(in);
          float m = -INFINITY;
          for (int h = h0; h < h1; ++h)
            for (int w = w0; w < w1; ++w) {
              const float v = x[(static_cast<size_t>(h) * g.in_w + w) * g.c + c];
              m = v > m ? v : m;
            }
          static_cast<float*>(out)[o + c] = m;
        }
      }
    }
}

void avg_pool_rows(const PoolGeom& g, const TensorRef& in, const OutputRef& out, int oh0, int oh1) {
  const float count = static_cast<float>(g.kh * g.kw);
  for (int oh = oh0; oh < oh1; ++oh)
    for (int ow = 0; ow < g.out_w; ++ow) {
      const int h0 = std::max(oh * g.sh - g.ph, 0), h1 = std::min(oh * g.sh - g.ph + g.kh, g.in_h);
      const int w0 = std::max(ow * g.sw - g.pw, 0), w1 = std::min(ow * g.sw - g.pw + g.kw, g.in_w);
      const size_t o = (static_cast<size_t>(oh) * g.out_w + ow) * g.c;
      for (int c = 0; c < g.c; ++c) {
        float y;
        if (in.codes) {
          const uint8_t* x = static_cast<const uint8_t*>(in.data);
          int32_t s = 0;
          for (int h = h0; h < h1; ++h)
            for (int w = w0; w < w1; ++w) s += x[(static_cast<size_t>(h) * g.in_w + w) * g.c + c];
          y = static_cast<float>(s) * in.scale / count;
        } else {
          const float* x = static_cast<const float*>(in.data);
          float s = 0.f;
          for (int h = h0; h < h1; ++h)
            for (int w = w0; w < w1; ++w) s += x[(static_cast<size_t>(h) * g.in_w + w) * g.c + c];
          y = s / count;
        }
        store_value(out, o + c, y);
      }
    }
}

void global_avg_pool(int h, int w, int c, const TensorRef& in, const OutputRef& out) {
  const size_t pixels = static_cast<size_t>(h) * w;
  const float count = static_cast<float>(pixels);
  if (in.codes) {
    const uint8_t* x = static_cast<const uint8_t*>(in.data);
    std::vector<int32_t> s(c, 0);
    for (size_t p = 0; p < pixels; ++p)
      for (int k = 0; k < c; ++k) s[k] += x[p * c + k];
    for (int k = 0; k < c; ++k) store_value(out, k, static_cast<float>(s[k]) * in.scale / count);
  } else {
    const float* x = static_cast<const float*>(in.data);
    std::vector<float> s(c, 0.f);
    for (size_t p = 0; p < pixels; ++p)
      for (int k = 0; k < c; ++k) s[k] += x[p * c + k];
    for (int k = 0; k < c; ++k) store_value(out, k, s[k] / count);
  }
}

void add_values(size_t n, const TensorRef& a, const TensorRef& b, const OutputRef& out) {
  for (size_t i = 0; i < n; ++i) store_value(out, i, load_value(a, i) + load_value(b, i));
}

void affine_values(size_t pixels, int c, const TensorRef& x, const float* scale, const float* bias,
                   const OutputRef& out) {
  for (size_t p = 0; p < pixels; ++p)
    for (int k = 0; k < c; ++k) {
      const size_t i = p * c + k;
      float y = scale[k] * load_value(x, i);
      y = y + bias[k];
      store_value(out, i, y);
    }
}

}  // namespace pactq::rt::kernels
