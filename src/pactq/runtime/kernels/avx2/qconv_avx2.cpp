// AVX2 quantized conv (NHWC, indirect: no im2col buffer).
//
// K order per group: tap (kh, kw) major, then input channels in quads of 4
// (cin_g rounded up to a multiple of 4; the padded weight lanes are 0, so the
// activation bytes read there, whatever they are, contribute nothing).
// For an output pixel and a tap, the 4 activation bytes of a quad are read as
// one int32 and broadcast; the packed weights of 8 output channels x 4 K
// values form one 32-byte vector, so one multiply yields 8 channel partials
// (VNNI style, no horizontal sums). Register block: MR = 6 output pixels
// (consecutive along the row) x 16 output channels (two 8-channel blocks),
// then 4-pixel blocks for the rest of a row. The input rows are read from a
// zero-halo copy (halo_rows.h), so padding taps and pixels past the row end
// read zeros and every activation address is base + constant; with one
// group, a kernel row's taps are one contiguous run of quads.
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
//    Only on CPUs where shuffles outrun byte multiplies (lut_pays_on_this_cpu).
// The epilogue (scale, bias, residual, requant or activation) is fused and is
// bit-identical to the scalar epilogue_store (mul then add, no FMA).
#include <immintrin.h>

#include "pactq/runtime/kernels/avx2/epilogue_avx2.h"
#include "pactq/runtime/kernels/avx2/qconv_lut_avx2.h"
#include "pactq/runtime/kernels/halo_rows.h"
#include "pactq/runtime/kernels/kernels.h"

namespace pactq::rt::kernels {
namespace {

// 6 pixels: 12 int16 accumulators stay in registers (the int32 ones are
// touched only at widening); +1.6-3.1% on ResNet20 over 4 pixels (Zen 1, one
// core, paired runs of `pactq bench profile`). The halo copy with constant
// offsets and the epilogue's constants hoisted out of the pixel loop took
// ResNet20's 3x3 layers from 137-207 to 175-240 GOPS (Xeon with AMX run at
// AVX2, one core).
constexpr int kMR = 6;

void pack_avx2(const ConvGeom& g, const uint8_t* codes, int wbits, int a_max, PackedQConv* p) {
  if (lut_pays_on_this_cpu() && lut_applicable(g, wbits, a_max)) {
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
  p->zeros.clear();  // padding comes from the zero halo (copy_halo_rows)
}

// The epilogue of a block of `pixels` x NB x 8 channels (c0..) whose channel
// count is whole: the channel constants once per block, the residual of form
// kRes (residual_form over the block's NB x 8 channels).
template <int MR, int NB, ResForm kRes>
inline void finish(const Epilogue& e, const __m256i (&acc32)[MR][NB], int pixels, int oh, int ow0,
                   int c0, int out_w, int out_c, void* out) {
  __m256 scale[NB], bias[NB];
  for (int b = 0; b < NB; ++b) {
    scale[b] = _mm256_loadu_ps(e.scale + c0 + 8 * b);
    bias[b] = _mm256_loadu_ps(e.bias + c0 + 8 * b);
  }
  const __m256 inv = _mm256_set1_ps(e.inv);
  const __m256 n_out = _mm256_set1_ps(static_cast<float>(e.n_out));
  size_t res_at = 0, res_step = 0;  // elements of the residual image
  if constexpr (kRes == ResForm::kCodes || kRes == ResForm::kFloats) {
    res_step = static_cast<size_t>(e.res_stride) * e.res_c;
    res_at = residual_index(e, oh, ow0, c0);
  }
  const uint8_t* const res_codes = static_cast<const uint8_t*>(e.res) + res_at;
  const float* const res_floats = static_cast<const float*>(e.res) + res_at;
  const size_t idx0 = (static_cast<size_t>(oh) * out_w + ow0) * out_c + c0;
  for (int i = 0; i < MR && i < pixels; ++i) {
    const size_t idx = idx0 + static_cast<size_t>(i) * out_c;
    __m256 y[NB];
    for (int b = 0; b < NB; ++b) {
      const __m256 acc = _mm256_cvtepi32_ps(acc32[i][b]);
      if constexpr (kRes == ResForm::kAny) {
        y[b] = epilogue_value8(e, acc, scale[b], bias[b], oh, ow0 + i, c0 + 8 * b);
      } else {
        y[b] = _mm256_add_ps(_mm256_mul_ps(scale[b], acc), bias[b]);
        if constexpr (kRes == ResForm::kCodes)
          y[b] = _mm256_add_ps(y[b], dequantize8(res_codes + i * res_step + 8 * b, e.res_scale));
        if constexpr (kRes == ResForm::kFloats)
          y[b] = _mm256_add_ps(y[b], _mm256_loadu_ps(res_floats + i * res_step + 8 * b));
      }
    }
    if (e.out_codes) {
      uint8_t* dst = static_cast<uint8_t*>(out) + idx;
      if constexpr (NB == 2) {
        store_code_lanes16(code_lanes8(y[0], inv, n_out), code_lanes8(y[1], inv, n_out), dst);
      } else {
        store_code_lanes8(code_lanes8(y[0], inv, n_out), dst);
      }
    } else {
      for (int b = 0; b < NB; ++b)
        _mm256_storeu_ps(static_cast<float*>(out) + idx + 8 * b,
                         float_activation8(y[b], e.act, e.alpha));
    }
  }
}

// MR pixels (oh, ow0..ow0+MR-1; those >= out_w are computed on halo zeros and
// dropped) x NB blocks of 8 channels (ob0..) of group `grp`. `rows` is the
// halo copy whose first row is output row `oh`'s first kernel row. kStep: the
// bytes between two output pixels' inputs (sw x in_c) when it is one of the
// common values, so every address is base + constant; 0: any.
template <int NB, int MR, int kMode, int kStep>
inline void block(const PackedQConv& p, const ConvGeom& g, const uint8_t* rows, size_t row_bytes,
                  const Epilogue& e, void* out, int grp, int ob0, int oh, int ow0) {
  const int cq = p.cq;
  const int nb = (g.cout_g + 7) / 8;
  const size_t steps = static_cast<size_t>(g.kh) * g.kw * cq;
  const size_t step = kStep ? kStep : static_cast<size_t>(g.sw) * g.in_c;
  // With one group and whole quads, a kernel row's taps are contiguous in
  // the input (and in the packed weights): one run of kw x cq quads.
  const bool joined = g.groups == 1 && g.in_c == 4 * cq;
  const int runs = joined ? 1 : g.kw;
  const int run_q = joined ? g.kw * cq : cq;
  const uint8_t* base = rows + static_cast<size_t>(ow0) * step + static_cast<size_t>(grp) * g.cin_g;

  __m256i acc32[MR][NB];
  for (int i = 0; i < MR; ++i)
    for (int b = 0; b < NB; ++b) acc32[i][b] = _mm256_setzero_si256();

  if constexpr (kMode == 1) {
    const int8_t* w[NB];
    for (int b = 0; b < NB; ++b)
      w[b] = p.w8.data() + (static_cast<size_t>(grp) * nb + ob0 + b) * steps * 32;
    const __m256i ones = _mm256_set1_epi16(1);
    __m256i acc16[MR][NB];
    for (int i = 0; i < MR; ++i)
      for (int b = 0; b < NB; ++b) acc16[i][b] = _mm256_setzero_si256();
    auto widen = [&] {
      for (int i = 0; i < MR; ++i)
        for (int b = 0; b < NB; ++b) {
          acc32[i][b] = _mm256_add_epi32(acc32[i][b], _mm256_madd_epi16(acc16[i][b], ones));
          acc16[i][b] = _mm256_setzero_si256();
        }
    };
    // Quads left before the int16 sums must be widened: the inner loop runs
    // up to that point with no per-quad test.
    int budget = p.i16_steps;
    for (int r = 0; r < g.kh; ++r)
      for (int s = 0; s < runs; ++s) {
        const uint8_t* x = base + r * row_bytes + static_cast<size_t>(s) * g.in_c;
        int q = 0;
        while (q < run_q) {
          const int n = run_q - q < budget ? run_q - q : budget;
          for (const int q1 = q + n; q < q1; ++q) {
            __m256i wv[NB];
            for (int b = 0; b < NB; ++b) {
              wv[b] = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w[b]));
              w[b] += 32;
            }
            for (int i = 0; i < MR; ++i) {
              const __m256i a = _mm256_set1_epi32(load_quad(x + i * step + 4 * q));
              for (int b = 0; b < NB; ++b)
                acc16[i][b] = _mm256_add_epi16(acc16[i][b], _mm256_maddubs_epi16(a, wv[b]));
            }
          }
          budget -= n;
          if (budget == 0) {
            widen();
            budget = p.i16_steps;
          }
        }
      }
    if (budget != p.i16_steps) widen();
  } else {
    const int16_t* w[NB];
    for (int b = 0; b < NB; ++b)
      w[b] = p.w16.data() + (static_cast<size_t>(grp) * nb + ob0 + b) * steps * 32;
    for (int r = 0; r < g.kh; ++r)
      for (int s = 0; s < runs; ++s) {
        const uint8_t* x = base + r * row_bytes + static_cast<size_t>(s) * g.in_c;
        for (int q = 0; q < run_q; ++q) {
          __m256i w0[NB], w1[NB];
          for (int b = 0; b < NB; ++b) {
            w0[b] = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w[b]));
            w1[b] = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w[b] + 16));
            w[b] += 32;
          }
          for (int i = 0; i < MR; ++i) {
            const uint32_t v = static_cast<uint32_t>(load_quad(x + i * step + 4 * q));
            const __m256i a01 =
                _mm256_set1_epi32(static_cast<int32_t>((v & 0xffu) | ((v & 0xff00u) << 8)));
            const __m256i a23 = _mm256_set1_epi32(
                static_cast<int32_t>(((v >> 16) & 0xffu) | ((v >> 8) & 0xff0000u)));
            for (int b = 0; b < NB; ++b) {
              acc32[i][b] = _mm256_add_epi32(acc32[i][b], _mm256_madd_epi16(a01, w0[b]));
              acc32[i][b] = _mm256_add_epi32(acc32[i][b], _mm256_madd_epi16(a23, w1[b]));
            }
          }
        }
      }
  }

  const int pixels = g.out_w - ow0 < MR ? g.out_w - ow0 : MR;
  const int j0 = ob0 * 8;
  const int c0 = grp * g.cout_g + j0;
  const int valid = g.cout_g - j0 < 8 * NB ? g.cout_g - j0 : 8 * NB;
  if (valid < 8 * NB) {  // a channel tail: per channel, as the scalar epilogue
    for (int b = 0; b < NB; ++b)
      for (int i = 0; i < pixels; ++i) {
        const int ow = ow0 + i;
        const size_t idx = (static_cast<size_t>(oh) * g.out_w + ow) * g.out_c + c0 + 8 * b;
        if (valid >= 8 * (b + 1)) {
          epilogue8(e, _mm256_cvtepi32_ps(acc32[i][b]), oh, ow, c0 + 8 * b, out, idx);
          continue;
        }
        alignas(32) int32_t tmp[8];
        _mm256_store_si256(reinterpret_cast<__m256i*>(tmp), acc32[i][b]);
        for (int k = 0; k < valid - 8 * b; ++k)
          epilogue_store(e, static_cast<float>(tmp[k]), oh, ow, c0 + 8 * b + k, out, idx + k);
      }
    return;
  }
  switch (residual_form(e, c0, 8 * NB)) {
    case ResForm::kNone:
      return finish<MR, NB, ResForm::kNone>(e, acc32, pixels, oh, ow0, c0, g.out_w, g.out_c, out);
    case ResForm::kCodes:
      return finish<MR, NB, ResForm::kCodes>(e, acc32, pixels, oh, ow0, c0, g.out_w, g.out_c, out);
    case ResForm::kFloats:
      return finish<MR, NB, ResForm::kFloats>(e, acc32, pixels, oh, ow0, c0, g.out_w, g.out_c, out);
    default:
      return finish<MR, NB, ResForm::kAny>(e, acc32, pixels, oh, ow0, c0, g.out_w, g.out_c, out);
  }
}

// A row in blocks of kMR pixels, then of 4: 6 a + 4 b covers most widths
// exactly (32 = 6 x 4 + 4 x 2, 56 = 6 x 8 + 4 x 2); otherwise the last block
// runs past the row on halo zeros (at most 3 pixels, see row_reach).
constexpr int kTailMR = 4;

inline int full_blocks(int out_w) {
  int a = out_w / kMR;
  while (a > 0 && (out_w - a * kMR) % kTailMR != 0) --a;
  return a;
}

// The end of a row's last block (the halo copy's reach).
inline int row_reach(int out_w) {
  const int a = full_blocks(out_w);
  return a * kMR + whole_blocks_reach(out_w - a * kMR, kTailMR);
}

template <int NB, int kMode, int kStep>
inline void row(const PackedQConv& p, const ConvGeom& g, const uint8_t* rows, size_t row_bytes,
                const Epilogue& e, void* out, int grp, int ob, int oh) {
  const int a = full_blocks(g.out_w);
  int ow = 0;
  for (int k = 0; k < a; ++k, ow += kMR)
    block<NB, kMR, kMode, kStep>(p, g, rows, row_bytes, e, out, grp, ob, oh, ow);
  for (; ow < g.out_w; ow += kTailMR)
    block<NB, kTailMR, kMode, kStep>(p, g, rows, row_bytes, e, out, grp, ob, oh, ow);
}

template <int kMode, int kStep>
void run_mode(const PackedQConv& p, const ConvGeom& g, const HaloRows& h, const Epilogue& e,
              void* out, int oh0, int oh1) {
  const int nb = (g.cout_g + 7) / 8;
  for (int oh = oh0; oh < oh1; ++oh) {
    const uint8_t* rows = h.at + static_cast<size_t>(oh - oh0) * g.sh * h.row_bytes;
    for (int grp = 0; grp < g.groups; ++grp) {
      int ob = 0;
      for (; ob + 2 <= nb; ob += 2)
        row<2, kMode, kStep>(p, g, rows, h.row_bytes, e, out, grp, ob, oh);
      if (ob < nb) row<1, kMode, kStep>(p, g, rows, h.row_bytes, e, out, grp, ob, oh);
    }
  }
}

template <int kMode>
void run_step(const PackedQConv& p, const ConvGeom& g, const HaloRows& h, const Epilogue& e,
              void* out, int oh0, int oh1) {
  with_pixel_step(g.sw * g.in_c, [&](auto step) {
    run_mode<kMode, decltype(step)::value>(p, g, h, e, out, oh0, oh1);
  });
}

void run_avx2(const PackedQConv& p, const ConvGeom& g, const uint8_t* in, const Epilogue& e,
              void* out, int oh0, int oh1) {
  if (p.mode == kQConvModeLut) {
    lut_run_rows(p, g, in, e, out, oh0, oh1);
    return;
  }
  if (oh1 <= oh0) return;
  thread_local AlignedVector<uint8_t> halo;
  const HaloRows h = copy_halo_rows(g, in, oh0, oh1, row_reach(g.out_w), halo);
  if (p.mode == 1) {
    run_step<1>(p, g, h, e, out, oh0, oh1);
  } else {
    run_step<2>(p, g, h, e, out, oh0, oh1);
  }
}

}  // namespace

const QConvKernel& qconv_avx2_kernel_impl() {
  static const QConvKernel k{"avx2", pack_avx2, run_avx2};
  return k;
}

}  // namespace pactq::rt::kernels
