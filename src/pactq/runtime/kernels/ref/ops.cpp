// Pools and element-wise ops (scalar; memory bound, one implementation).
#include <algorithm>

#include "pactq/runtime/kernels/kernels.h"

namespace pactq::rt::kernels {

void max_pool_rows(const PoolGeom& g, const void* in, bool codes, void* out, int oh0, int oh1) {
  for_each_pool_window(g, oh0, oh1, [&](const PoolWindow& win) {
    const int h0 = win.h0, h1 = win.h1, w0 = win.w0, w1 = win.w1;
    const size_t o = win.out;
    for (int c = 0; c < g.c; ++c) {
      if (codes) {
        const uint8_t* x = static_cast<const uint8_t*>(in);
        uint8_t m = 0;
        for (int h = h0; h < h1; ++h)
          for (int w = w0; w < w1; ++w) m = std::max(m, x[win.at(g, h, w) + c]);
        static_cast<uint8_t*>(out)[o + c] = m;
      } else {
        const float* x = static_cast<const float*>(in);
        float m = -INFINITY;
        for (int h = h0; h < h1; ++h)
          for (int w = w0; w < w1; ++w) {
            const float v = x[win.at(g, h, w) + c];
            m = v > m ? v : m;
          }
        static_cast<float*>(out)[o + c] = m;
      }
    }
  });
}

void avg_pool_rows(const PoolGeom& g, const TensorRef& in, const OutputRef& out, int oh0, int oh1) {
  const float count = static_cast<float>(g.kh * g.kw);
  for_each_pool_window(g, oh0, oh1, [&](const PoolWindow& win) {
    const int h0 = win.h0, h1 = win.h1, w0 = win.w0, w1 = win.w1;
    const size_t o = win.out;
    for (int c = 0; c < g.c; ++c) {
      float y;
      if (in.codes) {
        const uint8_t* x = static_cast<const uint8_t*>(in.data);
        int32_t s = 0;
        for (int h = h0; h < h1; ++h)
          for (int w = w0; w < w1; ++w) s += x[win.at(g, h, w) + c];
        y = static_cast<float>(s) * in.scale / count;
      } else {
        const float* x = static_cast<const float*>(in.data);
        float s = 0.f;
        for (int h = h0; h < h1; ++h)
          for (int w = w0; w < w1; ++w) s += x[win.at(g, h, w) + c];
        y = s / count;
      }
      store_value(out, o + c, y);
    }
  });
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
