// AVX2 table-lookup conv for 1-2 bit weights and 1-2 bit activations: the
// products come from pshufb, not from a multiplier.
//
// acc = sum (2q - n_w) a = 2 S - n_w sum(a), with S = sum q a over the
// receptive field. S is built from pairs of input channels: for the pair of
// activation codes (a0, a1) at a pixel, a 16-byte table holds
//   T[m] = (m & 3) a0 + (m >> 2) a1   for every weight nibble m = q0 | q1 << 2,
// and the packed weights hold each output channel's nibble of that pair, so
// one pshufb of T by 16 channels' nibbles gives 16 channels' two-term partial
// sums. A multiply-based kernel gets 32 products (ymm) from one vpmaddubsw; a
// pshufb gets 32 (16 lanes x 2 terms) from an xmm, and CPUs issue shuffles
// on more ports than byte multiplies (Zen 1: two shuffle pipes, one
// multiplier): this is where 2 bits become faster than 4.
//
// The tables are fixed, not built per pixel: there is one per activation
// pair, looked up by the pair's two code bytes read as one little-endian
// uint16 (a0 + 256 a1; the rows in between stay zero), so a lookup is a 16-bit
// load, a mask, a table load and the pshufb. Partial sums accumulate in bytes
// for as many pairs as cannot overflow (255 / (2 n_w a_max): 14 at W2/A2),
// then in uint16 (all of K when K n_w a_max <= 65535, else flushed to int32).
// sum(a) per output pixel comes from psadbw over each tap's channels.
// The epilogue is the AVX2 kernel's (bit-identical to the scalar one).
#include "pactq/runtime/kernels/avx2/qconv_lut_avx2.h"

#include <immintrin.h>

#include <algorithm>

#include "pactq/common/cpu_isa.h"

#include "pactq/runtime/kernels/avx2/epilogue_avx2.h"

namespace pactq::rt::kernels {
namespace {

constexpr int kMR = 4;  // output pixels per block (along the row)

int pair_max(int n_w, int a_max) {
  return 2 * n_w * a_max;
}

// The row of the table for the activation pair (a0, a1).
inline size_t table_row(int a0, int a1) {
  return static_cast<size_t>(a0) + 256u * static_cast<size_t>(a1);
}

// Sum of n activation codes at p (n < 2^16 codes of <= 255).
inline int32_t pixel_sum(const uint8_t* p, int n) {
  __m128i s = _mm_setzero_si128();
  int c = 0;
  for (; c + 16 <= n; c += 16)
    s = _mm_add_epi64(s, _mm_sad_epu8(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p + c)),
                                      _mm_setzero_si128()));
  int32_t t = _mm_cvtsi128_si32(s) + _mm_extract_epi32(s, 2);
  for (; c < n; ++c) t += p[c];
  return t;
}

// MR pixels (oh, ow0..) x NB blocks of 16 output channels (ob0..) of group grp;
// `asum` holds each pixel's sum of activations over its receptive field.
template <int MR, int NB>
inline void block(const PackedQConv& p, const ConvGeom& g, const uint8_t* in, const Epilogue& e,
                  void* out, int grp, int ob0, int oh, int ow0, const int32_t* asum) {
  const int cp = p.cq;  // channel pairs per tap
  const int nb = (g.cout_g + 15) / 16;
  const size_t steps = static_cast<size_t>(g.kh) * g.kw * cp;
  const size_t goff = static_cast<size_t>(grp) * g.cin_g;
  const uint8_t* lut = p.lut.data();
  const uint16_t mask = static_cast<uint16_t>(p.a_max | (p.a_max << 8));
  const uint8_t* w[NB];
  for (int b = 0; b < NB; ++b)
    w[b] = reinterpret_cast<const uint8_t*>(p.w8.data()) +
           (static_cast<size_t>(grp) * nb + ob0 + b) * steps * 16;

  const __m128i zero = _mm_setzero_si128();
  __m128i acc8[MR][NB], lo16[MR][NB], hi16[MR][NB];
  alignas(32) int32_t acc32[MR][NB][16] = {};
  for (int i = 0; i < MR; ++i)
    for (int b = 0; b < NB; ++b) acc8[i][b] = lo16[i][b] = hi16[i][b] = zero;
  const int u8_steps = p.i16_steps;    // pairs per byte accumulation
  const int u16_widens = p.lut_flush;  // byte flushes per uint16 flush (0: never)
  int cnt = 0, widens = 0;
  auto flush16 = [&] {
    for (int i = 0; i < MR; ++i)
      for (int b = 0; b < NB; ++b) {
        int32_t* a = acc32[i][b];
        const __m128i parts[4] = {
            _mm_cvtepu16_epi32(lo16[i][b]), _mm_cvtepu16_epi32(_mm_srli_si128(lo16[i][b], 8)),
            _mm_cvtepu16_epi32(hi16[i][b]), _mm_cvtepu16_epi32(_mm_srli_si128(hi16[i][b], 8))};
        for (int k = 0; k < 4; ++k) {
          __m128i* d = reinterpret_cast<__m128i*>(a + 4 * k);
          _mm_store_si128(d, _mm_add_epi32(_mm_load_si128(d), parts[k]));
        }
        lo16[i][b] = hi16[i][b] = zero;
      }
  };
  auto widen = [&] {
    for (int i = 0; i < MR; ++i)
      for (int b = 0; b < NB; ++b) {
        lo16[i][b] = _mm_add_epi16(lo16[i][b], _mm_unpacklo_epi8(acc8[i][b], zero));
        hi16[i][b] = _mm_add_epi16(hi16[i][b], _mm_unpackhi_epi8(acc8[i][b], zero));
        acc8[i][b] = zero;
      }
    if (u16_widens > 0 && ++widens == u16_widens) {
      flush16();
      widens = 0;
    }
  };

  const uint8_t* zeros = p.zeros.data();
  for (int r = 0; r < g.kh; ++r) {
    const int ih = oh * g.sh - g.ph + r;
    for (int s = 0; s < g.kw; ++s) {
      const uint8_t* px[MR];
      tap_pixels<MR>(g, in, ih, ow0, s, goff, zeros, px);
      for (int j = 0; j < cp; ++j) {
        __m128i idx[NB];
        for (int b = 0; b < NB; ++b) {
          idx[b] = _mm_loadu_si128(reinterpret_cast<const __m128i*>(w[b]));
          w[b] += 16;
        }
        for (int i = 0; i < MR; ++i) {
          uint16_t x;
          std::memcpy(&x, px[i] + 2 * j, 2);
          x &= mask;  // codes above a_max cannot occur; the mask keeps any byte inside the table
          const __m128i t = _mm_loadu_si128(reinterpret_cast<const __m128i*>(lut + 16u * x));
          for (int b = 0; b < NB; ++b)
            acc8[i][b] = _mm_add_epi8(acc8[i][b], _mm_shuffle_epi8(t, idx[b]));
        }
        if (++cnt == u8_steps) {
          widen();
          cnt = 0;
        }
      }
    }
  }
  if (cnt) widen();
  flush16();

  for (int b = 0; b < NB; ++b) {
    const int j0 = (ob0 + b) * 16;
    const int c0 = grp * g.cout_g + j0;
    const int valid = std::min(16, g.cout_g - j0);
    for (int i = 0; i < MR; ++i) {
      const int ow = ow0 + i;
      const size_t idx = (static_cast<size_t>(oh) * g.out_w + ow) * g.out_c + c0;
      // acc = 2 S - n_w sum(a), exact in int32.
      const __m256i corr = _mm256_set1_epi32(p.n_w * asum[i]);
      for (int h = 0; h < 2; ++h) {
        const __m256i sv = _mm256_load_si256(reinterpret_cast<const __m256i*>(acc32[i][b] + 8 * h));
        const __m256i acc = _mm256_sub_epi32(_mm256_add_epi32(sv, sv), corr);
        const int v = valid - 8 * h;
        if (v >= 8) {
          epilogue8(e, _mm256_cvtepi32_ps(acc), oh, ow, c0 + 8 * h, out, idx + 8 * h);
        } else if (v > 0) {
          alignas(32) int32_t tmp[8];
          _mm256_store_si256(reinterpret_cast<__m256i*>(tmp), acc);
          for (int k = 0; k < v; ++k)
            epilogue_store(e, static_cast<float>(tmp[k]), oh, ow, c0 + 8 * h + k, out,
                           idx + 8 * h + k);
        }
      }
    }
  }
}

// Each of MR pixels' sum of activations over its receptive field in group grp
// (padding taps read the zero pixel).
template <int MR>
inline void activation_sums(const PackedQConv& p, const ConvGeom& g, const uint8_t* in, int grp,
                            int oh, int ow0, int32_t* asum) {
  const size_t goff = static_cast<size_t>(grp) * g.cin_g;
  for (int i = 0; i < MR; ++i) asum[i] = 0;
  for (int r = 0; r < g.kh; ++r) {
    const int ih = oh * g.sh - g.ph + r;
    for (int s = 0; s < g.kw; ++s) {
      const uint8_t* px[MR];
      tap_pixels<MR>(g, in, ih, ow0, s, goff, p.zeros.data(), px);
      for (int i = 0; i < MR; ++i) asum[i] += pixel_sum(px[i], g.cin_g);
    }
  }
}

template <int MR>
inline void pixels(const PackedQConv& p, const ConvGeom& g, const uint8_t* in, const Epilogue& e,
                   void* out, int grp, int oh, int ow0) {
  int32_t asum[MR];
  activation_sums<MR>(p, g, in, grp, oh, ow0, asum);
  const int nb = (g.cout_g + 15) / 16;
  int ob = 0;
  for (; ob + 2 <= nb; ob += 2) block<MR, 2>(p, g, in, e, out, grp, ob, oh, ow0, asum);
  if (ob < nb) block<MR, 1>(p, g, in, e, out, grp, ob, oh, ow0, asum);
}

}  // namespace

bool lut_applicable(const ConvGeom& g, int wbits, int a_max) {
  // Pairs of channels never straddle a group; the table index needs a_max to
  // be a bit mask (codes are 0..2^bits - 1). Where it is used: measured on
  // Zen 1 against the multiply-based modes (docs/benchmarks.md), the lookup
  // wins once each table load feeds two 16-channel blocks and the tap is
  // long (8x8x64 -> 64 at W2/A2: 1.2x the W4/A4 multiply kernel); on
  // ResNet20's 16- and 32-channel layers it lost (0.5-1.0x), as did its
  // transposed form (weights as tables, pixels as lanes: 0.6-1.0x).
  return wbits >= 1 && wbits <= 2 && a_max >= 1 && a_max <= 3 && (a_max & (a_max + 1)) == 0 &&
         g.cin_g % 2 == 0 && g.cin_g >= 64 && g.cout_g >= 32;
}

bool lut_pays_on_this_cpu() {
  static const bool pays = cpu_is_amd_zen1();
  return pays;
}

void lut_pack(const ConvGeom& g, const uint8_t* codes, int wbits, int a_max, PackedQConv* p) {
  p->g = g;
  p->wbits = wbits;
  p->n_w = format::max_code(wbits);
  p->a_max = a_max;
  const int cp = g.cin_g / 2;
  p->cq = cp;
  const int taps = g.kh * g.kw;
  const int nb = (g.cout_g + 15) / 16;
  const size_t steps = static_cast<size_t>(taps) * cp;
  p->w8.assign(static_cast<size_t>(g.groups) * nb * steps * 16, 0);
  p->w16.clear();
  for (int grp = 0; grp < g.groups; ++grp)
    for (int j = 0; j < g.cout_g; ++j) {
      const int oc = grp * g.cout_g + j;
      const size_t blk = static_cast<size_t>(grp) * nb + j / 16;
      for (int ci = 0; ci < g.cin_g; ++ci)
        for (int t = 0; t < taps; ++t) {
          const int q = codes[(static_cast<size_t>(oc) * g.cin_g + ci) * taps + t];
          const size_t step = static_cast<size_t>(t) * cp + ci / 2;
          p->w8[(blk * steps + step) * 16 + j % 16] |= static_cast<int8_t>(q << (2 * (ci % 2)));
        }
    }
  p->lut.assign((table_row(a_max, a_max) + 1) * 16, 0);
  for (int a0 = 0; a0 <= a_max; ++a0)
    for (int a1 = 0; a1 <= a_max; ++a1)
      for (int m = 0; m < 16; ++m)
        p->lut[table_row(a0, a1) * 16 + m] = static_cast<uint8_t>((m & 3) * a0 + (m >> 2) * a1);
  // Byte accumulation: pairs before a byte could overflow; uint16: byte
  // flushes before a uint16 could (0: K never overflows it).
  const int pm = pair_max(p->n_w, a_max);
  p->i16_steps = std::max(1, 255 / pm);
  const long s_max = static_cast<long>(taps) * cp * pm;
  p->mode = kQConvModeLut;
  p->lut_flush = s_max <= 65535 ? 0 : std::max(1, 65535 / (p->i16_steps * pm));
  p->zeros.assign(static_cast<size_t>(g.cin_g) + 64, 0);
}

void lut_run_rows(const PackedQConv& p, const ConvGeom& g, const uint8_t* in, const Epilogue& e,
                  void* out, int oh0, int oh1) {
  for (int oh = oh0; oh < oh1; ++oh)
    for (int grp = 0; grp < g.groups; ++grp) {
      int ow = 0;
      for (; ow + kMR <= g.out_w; ow += kMR) pixels<kMR>(p, g, in, e, out, grp, oh, ow);
      switch (g.out_w - ow) {
        case 3:
          pixels<3>(p, g, in, e, out, grp, oh, ow);
          break;
        case 2:
          pixels<2>(p, g, in, e, out, grp, oh, ow);
          break;
        case 1:
          pixels<1>(p, g, in, e, out, grp, oh, ow);
          break;
        default:
          break;
      }
    }
}

}  // namespace pactq::rt::kernels
