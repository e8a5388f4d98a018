// AVX-512 float conv (fp first/last layers). Register-blocked: 8 output
// pixels x 16 output channels in 8 zmm accumulators, the weights of one
// (tap, input channel) loaded once per block. Per output element the
// operations are exactly the reference's (kernels/fconv_impl.h): taps r, s,
// then input channels, acc = acc + x * w as a multiply then an add (no FMA;
// -ffp-contract=off), so the results are bit-identical. A tap outside the
// image reads a zero pixel: acc + 0 * w == acc for finite weights, the same
// as the reference's skipping it.
#include <immintrin.h>

#include <type_traits>
#include <vector>

#include "pactq/runtime/kernels/avx512/epilogue_avx512.h"
#include "pactq/runtime/kernels/kernels.h"

namespace pactq::rt::kernels {
namespace {

constexpr int kMR = 8;

template <bool kCodes>
void rows(const PackedFConv& p, const void* in, float in_scale, const Epilogue& e, void* out,
          int oh0, int oh1) {
  const ConvGeom& g = p.g;
  const size_t taps = static_cast<size_t>(g.kh) * g.kw;
  const int nb = (g.cout_g + 15) / 16;
  using Elem = std::conditional_t<kCodes, uint8_t, float>;
  const std::vector<Elem> zeros(static_cast<size_t>(g.cin_g), Elem{0});
  const Elem* src = static_cast<const Elem*>(in);
  const __m512 vscale = _mm512_set1_ps(in_scale);
  for (int oh = oh0; oh < oh1; ++oh)
    for (int grp = 0; grp < g.groups; ++grp)
      for (int ow0 = 0; ow0 < g.out_w; ow0 += kMR)
        for (int b = 0; b < nb; ++b) {
          const int j0 = b * 16;
          const int valid = g.cout_g - j0 < 16 ? g.cout_g - j0 : 16;
          const __mmask16 mask = static_cast<__mmask16>((1u << valid) - 1u);
          __m512 acc[kMR];
          for (auto& a : acc) a = _mm512_setzero_ps();
          for (int r = 0; r < g.kh; ++r) {
            const int ih = oh * g.sh - g.ph + r;
            const bool row_ok = ih >= 0 && ih < g.in_h;
            for (int s = 0; s < g.kw; ++s) {
              const Elem* px[kMR];
              for (int i = 0; i < kMR; ++i) {
                const int ow = ow0 + i;
                const int iw = ow * g.sw - g.pw + s;
                px[i] = (row_ok && ow < g.out_w && iw >= 0 && iw < g.in_w)
                            ? src + (static_cast<size_t>(ih) * g.in_w + iw) * g.in_c +
                                  static_cast<size_t>(grp) * g.cin_g
                            : zeros.data();
              }
              const float* w =
                  p.w.data() +
                  ((static_cast<size_t>(grp) * taps + static_cast<size_t>(r) * g.kw + s) *
                   g.cin_g) *
                      g.cout_g +
                  j0;
              for (int ci = 0; ci < g.cin_g; ++ci) {
                const __m512 wv =
                    _mm512_maskz_loadu_ps(mask, w + static_cast<size_t>(ci) * g.cout_g);
                for (int i = 0; i < kMR; ++i) {
                  __m512 x;
                  if constexpr (kCodes) {
                    x = _mm512_mul_ps(_mm512_set1_ps(static_cast<float>(px[i][ci])), vscale);
                  } else {
                    x = _mm512_set1_ps(px[i][ci]);
                  }
                  acc[i] = _mm512_add_ps(acc[i], _mm512_mul_ps(x, wv));
                }
              }
            }
          }
          const int pixels = g.out_w - ow0 < kMR ? g.out_w - ow0 : kMR;
          const int c0 = grp * g.cout_g + j0;
          for (int i = 0; i < pixels; ++i) {
            const size_t idx = (static_cast<size_t>(oh) * g.out_w + ow0 + i) * g.out_c + c0;
            epilogue16(e, acc[i], oh, ow0 + i, c0, mask, out, idx);
          }
        }
}

}  // namespace

void fconv_rows_avx512_impl(const PackedFConv& p, const void* in, bool in_codes, float in_scale,
                            const Epilogue& e, void* out, int oh_begin, int oh_end) {
  if (in_codes) {
    rows<true>(p, in, in_scale, e, out, oh_begin, oh_end);
  } else {
    rows<false>(p, in, in_scale, e, out, oh_begin, oh_end);
  }
}

}  // namespace pactq::rt::kernels
