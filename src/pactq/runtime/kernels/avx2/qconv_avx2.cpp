// AVX2 quantized conv (NHWC, indirect: no im2col buffer).
//
// K order per group: tap (kh, kw) major, then input channels in quads of 4
// (cin_g rounded up to a multiple of 4; the padded weight lanes are 0, so the
// activation bytes read there, whatever they are, contribute nothing).
// For an output pixel and a tap, the 4 activation bytes of a quad are read as
// one int32 and broadcast; the packed weights of 8 output channels x 4 K
// values form one 32-byte vector, so one multiply yields 8 channel partials
// (VNNI style, no horizontal sums). Register block: MR = 6 output pixels
// (consecutive along the row) x 16 output channels (two 8-channel blocks).
//
// Two modes, chosen at pack time from the worst case |w| = n_w, a = a_max:
//  mode 1 (maddubs): weights 2q - n_w fit int8 (wbits <= 7) and a pair
//    a0*w0 + a1*w1 cannot saturate int16 (2 * a_max * n_w <= 32767).
//    vpmaddubsw(u8 activations, s8 weights) -> int16 pairs, accumulated in
//    int16 for i16_steps = floor(32767 / (2 * a_max * n_w)) quads (4x4 bits:
//    72 quads = 144 pair sums; 2x2: 1820), then widened by vpmaddwd with ones
//    and added to int32.
//  mode 2 (widening): everything else (8-bit weights: 2q - 255 does not fit
//    int8; 8-bit activations with >= 7-bit weights would saturate the pair).
//    Activations zero-extended to int16 pairs, weights int16, vpmaddwd ->
//    int32 directly.
//  mode 3 (table lookup, qconv_lut_avx2.cpp): 1-2 bit weights with 1-2 bit
//    activations on layers of >= 64 input channels; no multiplies at all.
// The epilogue (scale, bias, residual, requant or activation) is fused and is
// bit-identical to the scalar epilogue_store (mul then add, no FMA).
#include <immintrin.h>

#include "pactq/runtime/kernels/avx2/epilogue_avx2.h"
#include "pactq/runtime/kernels/avx2/qconv_lut_avx2.h"
#include "pactq/runtime/kernels/kernels.h"

namespace pactq::rt::kernels {
namespace {

// 6 pixels: 12 int16 accumulators stay in registers (the int32 ones are
// touched only at widening); +1.6-3.1% on ResNet20 over 4 pixels (Zen 1, one
// core, paired runs of `pactq bench profile`).
constexpr int kMR = 6;

void pack_avx2(const ConvGeom& g, const uint8_t* codes, int wbits, int a_max, PackedQConv* p) {
  if (lut_applicable(g, wbits, a_max)) {
    lut_pack(g, codes, wbits, a_max, p);
    return;
  }
  p->lut.clear();
  p->g = g;
  p->wbits = wbits;
  p->n_w = format::max_code(wbits);
  p->a_max = a_max;
  const int cq = (g.cin_g + 3) / 4;
  p->cq = cq;
  const int taps = g.kh * g.kw;
  const int nb = (g.cout_g + 7) / 8;
  const long pair_max = 2L * a_max * p->n_w;
  p->mode = (p->n_w <= 127 && pair_max <= 32767) ? 1 : 2;
  p->i16_steps = pair_max > 0 ? static_cast<int>(32767 / pair_max) : 1 << 30;
  if (p->i16_steps < 1) p->i16_steps = 1;
  const size_t steps = static_cast<size_t>(taps) * cq;
  const size_t blocks = static_cast<size_t>(g.groups) * nb;
  if (p->mode == 1) {
    p->w8.assign(blocks * steps * 32, 0);
    p->w16.clear();
  } else {
    p->w16.assign(blocks * steps * 32, 0);
    p->w8.clear();
  }
  for (int grp = 0; grp < g.groups; ++grp)
    for (int j = 0; j < g.cout_g; ++j) {
      const int oc = grp * g.cout_g + j;
      const size_t blk = static_cast<size_t>(grp) * nb + j / 8;
      const int lane = j % 8;
      for (int ci = 0; ci < g.cin_g; ++ci)
        for (int t = 0; t < taps; ++t) {
          const int q = codes[(static_cast<size_t>(oc) * g.cin_g + ci) * taps + t];
          const int w = 2 * q - p->n_w;
          const size_t step = static_cast<size_t>(t) * cq + ci / 4;
          const int k = ci % 4;
          if (p->mode == 1) {
            p->w8[(blk * steps + step) * 32 + lane * 4 + k] = static_cast<int8_t>(w);
          } else {
            // half k/2: [8 lanes][2]
            p->w16[(blk * steps + step) * 32 + (k / 2) * 16 + lane * 2 + (k % 2)] =
                static_cast<int16_t>(w);
          }
        }
    }
  p->zeros.assign(static_cast<size_t>(cq) * 4 + 64, 0);
}

// Computes MR pixels (oh, ow0..ow0+MR-1) x NB blocks of 8 channels (ob0..ob0+NB-1)
// of group `grp`.
template <int MR, int NB>
inline void block(const PackedQConv& p, const ConvGeom& g, const uint8_t* in, const Epilogue& e,
                  void* out, int grp, int ob0, int oh, int ow0) {
  const int cq = p.cq;
  const int nb = (g.cout_g + 7) / 8;
  const size_t steps = static_cast<size_t>(g.kh) * g.kw * cq;
  const uint8_t* zeros = p.zeros.data();
  const size_t goff = static_cast<size_t>(grp) * g.cin_g;

  __m256i acc32[MR][NB];
  for (int i = 0; i < MR; ++i)
    for (int b = 0; b < NB; ++b) acc32[i][b] = _mm256_setzero_si256();

  if (p.mode == 1) {
    const int8_t* w[NB];
    for (int b = 0; b < NB; ++b)
      w[b] = p.w8.data() + (static_cast<size_t>(grp) * nb + ob0 + b) * steps * 32;
    const __m256i ones = _mm256_set1_epi16(1);
    __m256i acc16[MR][NB];
    for (int i = 0; i < MR; ++i)
      for (int b = 0; b < NB; ++b) acc16[i][b] = _mm256_setzero_si256();
    auto quad = [&](const uint8_t* const* px, int q) {
      __m256i wv[NB];
      for (int b = 0; b < NB; ++b) {
        wv[b] = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w[b]));
        w[b] += 32;
      }
      for (int i = 0; i < MR; ++i) {
        const __m256i a = _mm256_set1_epi32(load_quad(px[i] + 4 * q));
        for (int b = 0; b < NB; ++b)
          acc16[i][b] = _mm256_add_epi16(acc16[i][b], _mm256_maddubs_epi16(a, wv[b]));
      }
    };
    auto widen = [&] {
      for (int i = 0; i < MR; ++i)
        for (int b = 0; b < NB; ++b) {
          acc32[i][b] = _mm256_add_epi32(acc32[i][b], _mm256_madd_epi16(acc16[i][b], ones));
          acc16[i][b] = _mm256_setzero_si256();
        }
    };
    // Widen between taps when a whole tap fits the int16 headroom (the usual
    // case): the quad loop then has no branch and keeps acc16 in place.
    const int taps_per_widen = p.i16_steps / cq;
    int cnt = 0;
    for (int r = 0; r < g.kh; ++r) {
      const int ih = oh * g.sh - g.ph + r;
      for (int s = 0; s < g.kw; ++s) {
        const uint8_t* px[MR];
        tap_pixels<MR>(g, in, ih, ow0, s, goff, zeros, px);
        if (taps_per_widen >= 1) {
          for (int q = 0; q < cq; ++q) quad(px, q);
          if (++cnt == taps_per_widen) {
            widen();
            cnt = 0;
          }
        } else {
          for (int q = 0; q < cq; ++q) {
            quad(px, q);
            if (++cnt == p.i16_steps) {
              widen();
              cnt = 0;
            }
          }
        }
      }
    }
    if (cnt) widen();
  } else {
    const int16_t* w[NB];
    for (int b = 0; b < NB; ++b)
      w[b] = p.w16.data() + (static_cast<size_t>(grp) * nb + ob0 + b) * steps * 32;
    for (int r = 0; r < g.kh; ++r) {
      const int ih = oh * g.sh - g.ph + r;
      for (int s = 0; s < g.kw; ++s) {
        const uint8_t* px[MR];
        tap_pixels<MR>(g, in, ih, ow0, s, goff, zeros, px);
        for (int q = 0; q < cq; ++q) {
          __m256i w0[NB], w1[NB];
          for (int b = 0; b < NB; ++b) {
            w0[b] = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w[b]));
            w1[b] = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w[b] + 16));
            w[b] += 32;
          }
          for (int i = 0; i < MR; ++i) {
            const uint32_t x = static_cast<uint32_t>(load_quad(px[i] + 4 * q));
            const __m256i a01 =
                _mm256_set1_epi32(static_cast<int32_t>((x & 0xffu) | ((x & 0xff00u) << 8)));
            const __m256i a23 = _mm256_set1_epi32(
                static_cast<int32_t>(((x >> 16) & 0xffu) | ((x >> 8) & 0xff0000u)));
            for (int b = 0; b < NB; ++b) {
              acc32[i][b] = _mm256_add_epi32(acc32[i][b], _mm256_madd_epi16(a01, w0[b]));
              acc32[i][b] = _mm256_add_epi32(acc32[i][b], _mm256_madd_epi16(a23, w1[b]));
            }
          }
        }
      }
    }
  }

  for (int b = 0; b < NB; ++b) {
    const int j0 = (ob0 + b) * 8;
    const int c0 = grp * g.cout_g + j0;
    const int valid = g.cout_g - j0 < 8 ? g.cout_g - j0 : 8;
    for (int i = 0; i < MR; ++i) {
      const int ow = ow0 + i;
      const size_t idx = (static_cast<size_t>(oh) * g.out_w + ow) * g.out_c + c0;
      if (valid == 8) {
        epilogue8(e, _mm256_cvtepi32_ps(acc32[i][b]), oh, ow, c0, out, idx);
      } else {
        alignas(32) int32_t tmp[8];
        _mm256_store_si256(reinterpret_cast<__m256i*>(tmp), acc32[i][b]);
        for (int k = 0; k < valid; ++k)
          epilogue_store(e, static_cast<float>(tmp[k]), oh, ow, c0 + k, out, idx + k);
      }
    }
  }
}

template <int NB>
inline void row(const PackedQConv& p, const ConvGeom& g, const uint8_t* in, const Epilogue& e,
                void* out, int grp, int ob, int oh) {
  const int out_w = g.out_w;
  int ow = 0;
  for (; ow + kMR <= out_w; ow += kMR) block<kMR, NB>(p, g, in, e, out, grp, ob, oh, ow);
  switch (out_w - ow) {
    case 5:
      block<5, NB>(p, g, in, e, out, grp, ob, oh, ow);
      break;
    case 4:
      block<4, NB>(p, g, in, e, out, grp, ob, oh, ow);
      break;
    case 3:
      block<3, NB>(p, g, in, e, out, grp, ob, oh, ow);
      break;
    case 2:
      block<2, NB>(p, g, in, e, out, grp, ob, oh, ow);
      break;
    case 1:
      block<1, NB>(p, g, in, e, out, grp, ob, oh, ow);
      break;
    default:
      break;
  }
}

void run_avx2(const PackedQConv& p, const ConvGeom& g, const uint8_t* in, const Epilogue& e,
              void* out, int oh0, int oh1) {
  if (p.mode == kQConvModeLut) {
    lut_run_rows(p, g, in, e, out, oh0, oh1);
    return;
  }
  const int nb = (g.cout_g + 7) / 8;
  for (int oh = oh0; oh < oh1; ++oh)
    for (int grp = 0; grp < g.groups; ++grp) {
      int ob = 0;
      for (; ob + 2 <= nb; ob += 2) row<2>(p, g, in, e, out, grp, ob, oh);
      if (ob < nb) row<1>(p, g, in, e, out, grp, ob, oh);
    }
}

}  // namespace

const QConvKernel& qconv_avx2_kernel_impl() {
  static const QConvKernel k{"avx2", pack_avx2, run_avx2};
  return k;
}

}  // namespace pactq::rt::kernels
