// AVX-512 VNNI quantized conv (NHWC, indirect: no im2col buffer).
//
// Same K order as the AVX2 variant: tap (kh, kw) major, then input channels
// in quads of 4 (cin_g rounded up to a multiple of 4, padded weight lanes 0).
// One zmm of packed weights holds 16 output channels x 4 K values; the 4
// activation bytes of a quad are broadcast from memory and `vpdpbusd` adds the
// 4 u8 x s8 products of each channel straight into its int32 lane: no int16
// stage, no saturation, no widening. Register block: MR output pixels along
// the row x NB blocks of 16 channels (run_mode picks both); the input rows are
// read from a zero-halo copy (copy_halo_rows), so padding taps and pixels past
// the row end read zeros, and the latter are not stored.
//
// Weight operand (pack time, by wbits):
//  mode 1 (wbits <= 7): 2q - n_w fits int8; acc = sum (2q - n_w) a.
//  mode 2 (wbits == 8): 2q - 255 does not fit int8, but 2q - 255 =
//    2 (q - 128) + 1, so acc = 2 sum (q - 128) a + sum a; the activation sum
//    comes from one more vpdpbusd per pixel against a ones vector whose lanes
//    past cin_g are 0 (the bytes read there belong to the next pixel).
// The epilogue is bit-identical to the scalar epilogue_store (mul then add,
// no FMA; the file is compiled with -ffp-contract=off).
#include <immintrin.h>

#include "pactq/runtime/kernels/avx512/epilogue_avx512.h"
#include "pactq/runtime/kernels/halo_rows.h"
#include "pactq/runtime/kernels/kernels.h"

namespace pactq::rt::kernels {
namespace {

constexpr int kLanes = 16;  // output channels per zmm

void pack_vnni(const ConvGeom& g, const uint8_t* codes, int wbits, int a_max, PackedQConv* p) {
  p->g = g;
  p->wbits = wbits;
  p->n_w = format::max_code(wbits);
  p->a_max = a_max;
  p->mode = p->n_w <= 127 ? 1 : 2;
  p->i16_steps = 0;
  const int cq = (g.cin_g + 3) / 4;
  p->cq = cq;
  const int taps = g.kh * g.kw;
  const int nb = (g.cout_g + kLanes - 1) / kLanes;
  const size_t steps = static_cast<size_t>(taps) * cq;
  const size_t blocks = static_cast<size_t>(g.groups) * nb;
  p->w8.assign(blocks * steps * 64, 0);
  p->w16.clear();
  for (int grp = 0; grp < g.groups; ++grp)
    for (int j = 0; j < g.cout_g; ++j) {
      const int oc = grp * g.cout_g + j;
      const size_t blk = static_cast<size_t>(grp) * nb + j / kLanes;
      const int lane = j % kLanes;
      for (int ci = 0; ci < g.cin_g; ++ci)
        for (int t = 0; t < taps; ++t) {
          const int q = codes[(static_cast<size_t>(oc) * g.cin_g + ci) * taps + t];
          const int w = p->mode == 1 ? 2 * q - p->n_w : q - 128;
          const size_t step = static_cast<size_t>(t) * cq + ci / 4;
          p->w8[(blk * steps + step) * 64 + lane * 4 + ci % 4] = static_cast<int8_t>(w);
        }
    }
  p->zeros.clear();  // padding comes from the zero halo (copy_halo_rows)
}

// MR pixels (oh, ow0..ow0+MR-1; those >= out_w are computed on halo zeros
// and dropped) x NB blocks of 16 channels (ob0..) of group `grp`. `rows` is
// the halo copy whose first row is output row `oh`'s first kernel row. kStep:
// the bytes between two output pixels' inputs (sw x in_c) when it is one of
// the common values, so every address is base + constant; 0: any.
template <int NB, int kMR, bool kWide, int kStep>
inline void block(const PackedQConv& p, const ConvGeom& g, const uint8_t* rows, size_t row_bytes,
                  const Epilogue& e, void* out, int grp, int ob0, int oh, int ow0) {
  const int cq = p.cq;
  const int nb = (g.cout_g + kLanes - 1) / kLanes;
  const size_t steps = static_cast<size_t>(g.kh) * g.kw * cq;
  const size_t step = kStep ? kStep : static_cast<size_t>(g.sw) * g.in_c;
  const int8_t* w[NB];
  for (int b = 0; b < NB; ++b)
    w[b] = p.w8.data() + (static_cast<size_t>(grp) * nb + ob0 + b) * steps * 64;
  // With one group and whole quads, a kernel row's taps are contiguous in
  // the input (and in the packed weights): one run of kw x cq quads.
  const bool joined = g.groups == 1 && g.in_c == 4 * cq;
  const int runs = joined ? 1 : g.kw;
  const int run_q = joined ? g.kw * cq : cq;
  const uint8_t* base = rows + static_cast<size_t>(ow0) * step + static_cast<size_t>(grp) * g.cin_g;

  __m512i acc[kMR][NB];
  __m512i asum[kWide ? kMR : 1];  // mode 2 only: sum of activations per pixel
  for (int i = 0; i < kMR; ++i)
    for (int b = 0; b < NB; ++b) acc[i][b] = _mm512_setzero_si512();
  for (auto& a : asum) a = _mm512_setzero_si512();
  // mode 2: ones in the byte lanes of real input channels.
  const __m512i ones_full = _mm512_set1_epi8(1);
  const int tail = g.cin_g % 4;
  const __m512i ones_tail = _mm512_set1_epi32(tail == 0 ? 0x01010101 : (1 << (8 * tail)) / 255);

  for (int r = 0; r < g.kh; ++r)
    for (int s = 0; s < runs; ++s) {
      const uint8_t* x = base + r * row_bytes + static_cast<size_t>(s) * g.in_c;
      int q = 0;
      if constexpr (!kWide) {
        // Broadcast loads, not one 16-byte load and shuffles: on Zen 5 the
        // shuffles competed with vpdpbusd (16-channel conv 188 -> 250 GOPS).
        for (; q + 4 <= run_q; q += 4) {
          __m512i wv[4][NB];
          for (int k = 0; k < 4; ++k)
            for (int b = 0; b < NB; ++b) wv[k][b] = _mm512_loadu_si512(w[b] + 64 * k);
          for (int b = 0; b < NB; ++b) w[b] += 256;
          for (int i = 0; i < kMR; ++i)
            for (int k = 0; k < 4; ++k) {
              const __m512i a = _mm512_set1_epi32(load_quad(x + i * step + 4 * (q + k)));
              for (int b = 0; b < NB; ++b) acc[i][b] = _mm512_dpbusd_epi32(acc[i][b], a, wv[k][b]);
            }
        }
      }
      for (; q < run_q; ++q) {
        __m512i wv[NB];
        for (int b = 0; b < NB; ++b) {
          wv[b] = _mm512_loadu_si512(w[b]);
          w[b] += 64;
        }
        // The last quad of a tap holds the channel tail (wide mode sums only real channels).
        const __m512i ones = (kWide && q % cq == cq - 1) ? ones_tail : ones_full;
        for (int i = 0; i < kMR; ++i) {
          const __m512i a = _mm512_set1_epi32(load_quad(x + i * step + 4 * q));
          for (int b = 0; b < NB; ++b) acc[i][b] = _mm512_dpbusd_epi32(acc[i][b], a, wv[b]);
          if constexpr (kWide) asum[i] = _mm512_dpbusd_epi32(asum[i], a, ones);
        }
      }
    }

  const int pixels = g.out_w - ow0 < kMR ? g.out_w - ow0 : kMR;
  for (int b = 0; b < NB; ++b) {
    const int j0 = (ob0 + b) * kLanes;
    const int c0 = grp * g.cout_g + j0;
    const int valid = g.cout_g - j0 < kLanes ? g.cout_g - j0 : kLanes;
    const __mmask16 mask = static_cast<__mmask16>((1u << valid) - 1u);
    const Epilogue16Channels ch = epilogue16_channels(e, c0, mask);
    const size_t idx0 = (static_cast<size_t>(oh) * g.out_w + ow0) * g.out_c + c0;
    const size_t out_c = g.out_c;
    with_epilogue16_form(e, ch, out, [&](auto&& store) {
      for (int i = 0; i < kMR; ++i) {
        if (i >= pixels) break;
        __m512i v = acc[i][b];
        if constexpr (kWide) v = _mm512_add_epi32(_mm512_slli_epi32(v, 1), asum[i]);
        store(_mm512_cvtepi32_ps(v), oh, ow0 + i, idx0 + i * out_c);
      }
    });
  }
}

// The widest pixel block run_mode uses (the halo copy is sized for it).
constexpr int kMaxMR = 16;

// MR x NB: 8 x 2 blocks give 16 independent vpdpbusd chains; a lone 16-channel
// block takes 16 pixels (when the row is that wide) for the same reason: with
// 8 chains the instruction's latency, not its throughput, would limit it.
template <bool kWide, int kStep>
void run_mode(const PackedQConv& p, const ConvGeom& g, const HaloRows& h, const Epilogue& e,
              void* out, int oh0, int oh1) {
  const int nb = (g.cout_g + kLanes - 1) / kLanes;
  const bool wide_rows = g.out_w >= 16;
  for (int oh = oh0; oh < oh1; ++oh) {
    const uint8_t* rows = h.at + static_cast<size_t>(oh - oh0) * g.sh * h.row_bytes;
    for (int grp = 0; grp < g.groups; ++grp) {
      int ob = 0;
      if (g.out_w == 1) {
        // One pixel (linear layers): 8-pixel blocks would compute 7 on zeros;
        // 4 channel blocks keep 4 vpdpbusd chains in flight instead (AlexNet-BN
        // fc6 + fc7 8.5 -> 6.3 ms per 4 images on one Zen 5 core).
        for (; ob + 4 <= nb; ob += 4)
          block<4, 1, kWide, kStep>(p, g, rows, h.row_bytes, e, out, grp, ob, oh, 0);
        for (; ob < nb; ++ob)
          block<1, 1, kWide, kStep>(p, g, rows, h.row_bytes, e, out, grp, ob, oh, 0);
        continue;
      }
      // Rows of 7k pixels (ImageNet nets: 56, 28, 14, 7) take 7-pixel blocks:
      // 8-pixel ones would compute 1 pixel in 8 on zeros.
      if (g.out_w % 8 != 0 && g.out_w % 7 == 0) {
        for (; ob + 2 <= nb; ob += 2)
          for (int ow = 0; ow < g.out_w; ow += 7)
            block<2, 7, kWide, kStep>(p, g, rows, h.row_bytes, e, out, grp, ob, oh, ow);
      }
      for (; ob + 2 <= nb; ob += 2)
        for (int ow = 0; ow < g.out_w; ow += 8)
          block<2, 8, kWide, kStep>(p, g, rows, h.row_bytes, e, out, grp, ob, oh, ow);
      if (ob < nb) {
        if (wide_rows) {
          constexpr int mr = kWide ? 12 : kMaxMR;  // wide mode also keeps MR activation sums
          for (int ow = 0; ow < g.out_w; ow += mr)
            block<1, mr, kWide, kStep>(p, g, rows, h.row_bytes, e, out, grp, ob, oh, ow);
        } else {
          for (int ow = 0; ow < g.out_w; ow += 8)
            block<1, 8, kWide, kStep>(p, g, rows, h.row_bytes, e, out, grp, ob, oh, ow);
        }
      }
    }
  }
}

template <bool kWide>
void run_step(const PackedQConv& p, const ConvGeom& g, const HaloRows& h, const Epilogue& e,
              void* out, int oh0, int oh1) {
  with_pixel_step(g.sw * g.in_c, [&](auto step) {
    run_mode<kWide, decltype(step)::value>(p, g, h, e, out, oh0, oh1);
  });
}

void run_vnni(const PackedQConv& p, const ConvGeom& g, const uint8_t* in, const Epilogue& e,
              void* out, int oh0, int oh1) {
  if (oh1 <= oh0) return;
  thread_local AlignedVector<uint8_t> halo;
  const HaloRows h = copy_halo_rows(g, in, oh0, oh1, whole_blocks_reach(g.out_w, kMaxMR), halo);
  if (p.mode == 1) {
    run_step<false>(p, g, h, e, out, oh0, oh1);
  } else {
    run_step<true>(p, g, h, e, out, oh0, oh1);
  }
}

}  // namespace

const QConvKernel& qconv_avx512_vnni_kernel_impl() {
  static const QConvKernel k{"avx512vnni", pack_vnni, run_vnni};
  return k;
}

}  // namespace pactq::rt::kernels
