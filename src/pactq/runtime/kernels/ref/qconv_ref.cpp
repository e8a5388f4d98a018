// Scalar reference of the quantized conv family: the definition the AVX2
// variant is tested against.
#include "pactq/runtime/kernels/kernels.h"

namespace pactq::rt::kernels {
namespace {

void pack_ref(const ConvGeom& g, const uint8_t* codes, int wbits, int a_max, PackedQConv* p) {
  p->g = g;
  p->wbits = wbits;
  p->n_w = format::max_code(wbits);
  p->a_max = a_max;
  p->mode = 0;
  const size_t taps = static_cast<size_t>(g.kh) * g.kw;
  p->w16.assign(static_cast<size_t>(g.out_c) * taps * g.cin_g, 0);
  // logical [oc][ci][r][s] -> [oc][r][s][ci], value 2q - n_w
  for (int oc = 0; oc < g.out_c; ++oc)
    for (int ci = 0; ci < g.cin_g; ++ci)
      for (size_t t = 0; t < taps; ++t) {
        const int q = codes[(static_cast<size_t>(oc) * g.cin_g + ci) * taps + t];
        p->w16[(static_cast<size_t>(oc) * taps + t) * g.cin_g + ci] =
            static_cast<int16_t>(2 * q - p->n_w);
      }
}

void run_ref(const PackedQConv& p, const ConvGeom& g, const uint8_t* in, const Epilogue& e,
             void* out, int oh0, int oh1) {
  const size_t taps = static_cast<size_t>(g.kh) * g.kw;
  for (int oh = oh0; oh < oh1; ++oh)
    for (int ow = 0; ow < g.out_w; ++ow)
      for (int oc = 0; oc < g.out_c; ++oc) {
        const int grp = oc / g.cout_g;
        const int16_t* w = p.w16.data() + static_cast<size_t>(oc) * taps * g.cin_g;
        int32_t acc = 0;
        for (int r = 0; r < g.kh; ++r) {
          const int ih = oh * g.sh - g.ph + r;
          if (ih < 0 || ih >= g.in_h) continue;
          for (int s = 0; s < g.kw; ++s) {
            const int iw = ow * g.sw - g.pw + s;
            if (iw < 0 || iw >= g.in_w) continue;
            const uint8_t* x = in + (static_cast<size_t>(ih) * g.in_w + iw) * g.in_c +
                               static_cast<size_t>(grp) * g.cin_g;
            const int16_t* wt = w + (static_cast<size_t>(r) * g.kw + s) * g.cin_g;
            for (int ci = 0; ci < g.cin_g; ++ci) acc += static_cast<int32_t>(wt[ci]) * x[ci];
          }
        }
        const size_t idx = (static_cast<size_t>(oh) * g.out_w + ow) * g.out_c + oc;
        epilogue_store(e, static_cast<float>(acc), oh, ow, oc, out, idx);
      }
}

}  // namespace

const QConvKernel& qconv_ref_kernel() {
  static const QConvKernel k{"ref", pack_ref, run_ref};
  return k;
}

}  // namespace pactq::rt::kernels
