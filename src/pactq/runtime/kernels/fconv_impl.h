// Float conv reference body (ref/fconv.cpp): the per-element operations
// (taps r, s, then input channels; acc = fma(x, w, acc), one rounding a term,
// docs/format.md) that every SIMD variant (fconv_blocked.h) reproduces bit for
// bit: a fused multiply-add is exactly rounded wherever it runs.
#pragma once

#include <algorithm>
#include <cmath>
#include <vector>

#include "pactq/runtime/kernels/kernels.h"

namespace pactq::rt::kernels {

static inline void fconv_rows_impl(const PackedFConv& p, const void* in, bool in_codes,
                                   float in_scale, const Epilogue& e, void* out, int oh0, int oh1) {
  const ConvGeom& g = p.g;
  const size_t taps = static_cast<size_t>(g.kh) * g.kw;
  std::vector<float> acc(g.cout_g);
  std::vector<float> x(g.cin_g);
  for (int oh = oh0; oh < oh1; ++oh)
    for (int ow = 0; ow < g.out_w; ++ow)
      for (int grp = 0; grp < g.groups; ++grp) {
        std::fill(acc.begin(), acc.end(), 0.f);
        for (int r = 0; r < g.kh; ++r) {
          const int ih = oh * g.sh - g.ph + r;
          if (ih < 0 || ih >= g.in_h) continue;
          for (int s = 0; s < g.kw; ++s) {
            const int iw = ow * g.sw - g.pw + s;
            if (iw < 0 || iw >= g.in_w) continue;
            const size_t base = (static_cast<size_t>(ih) * g.in_w + iw) * g.in_c +
                                static_cast<size_t>(grp) * g.cin_g;
            if (in_codes) {
              const uint8_t* src = static_cast<const uint8_t*>(in) + base;
              for (int ci = 0; ci < g.cin_g; ++ci) x[ci] = static_cast<float>(src[ci]) * in_scale;
            } else {
              const float* src = static_cast<const float*>(in) + base;
              std::copy(src, src + g.cin_g, x.begin());
            }
            const float* w =
                p.w.data() +
                ((static_cast<size_t>(grp) * taps + static_cast<size_t>(r) * g.kw + s) * g.cin_g) *
                    g.cout_g;
            for (int ci = 0; ci < g.cin_g; ++ci) {
              const float xv = x[ci];
              const float* wr = w + static_cast<size_t>(ci) * g.cout_g;
              float* a = acc.data();
              for (int j = 0; j < g.cout_g; ++j) a[j] = std::fma(xv, wr[j], a[j]);
            }
          }
        }
        for (int j = 0; j < g.cout_g; ++j) {
          const int oc = grp * g.cout_g + j;
          const size_t idx = (static_cast<size_t>(oh) * g.out_w + ow) * g.out_c + oc;
          epilogue_store(e, acc[j], oh, ow, oc, out, idx);
        }
      }
}

}  // namespace pactq::rt::kernels
