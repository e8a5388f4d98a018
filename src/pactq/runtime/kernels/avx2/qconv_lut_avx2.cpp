// AVX2 table-lookup conv for 1-2 bit weights and 1-3 bit activations: the
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
inline void block(const PackedQConv& p, const uint8_t* in, const Epilogue& e, void* out, int grp,
                  int ob0, int oh, int ow0, const int32_t* asum) {
  const ConvGeom& g = p.g;
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
  const int u8_steps = p.i16_steps;  // pairs per byte accumulation
  const int u16_widens = p.lut_flush;  // byte flushes per uint16 flush (0: never)
  int cnt = 0, widens = 0;
  auto flush16 = [&] {
    for (int i = 0; i < MR; ++i)
      for (int b = 0; b < NB; ++b) {
        int32_t* a = acc32[i][b];
        const __m128i parts[4] = {_mm_cvtepu16_epi32(lo16[i][b]),
                                  _mm_cvtepu16_epi32(_mm_srli_si128(lo16[i][b], 8)),
                                  _mm_cvtepu16_epi32(hi16[i][b]),
                                  _mm_cvtepu16_epi32(_mm_srli_si128(hi16[i][b], 8))};
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
        const __m256i sv =
            _mm256_load_si256(reinterpret_cast<const __m256i*>(acc32[i][b] + 8 * h));
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
inline void activation_sums(const PackedQConv& p, const uint8_t* in, int grp, int oh, int ow0,
                            int32_t* asum) {
  const ConvGeom& g = p.g;
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
inline void pixels(const PackedQConv& p, const uint8_t* in, const Epilogue& e, void* out, int grp,
                   int oh, int ow0) {
  int32_t asum[MR];
  activation_sums<MR>(p, in, grp, oh, ow0, asum);
  const int nb = (p.g.cout_g + 15) / 16;
  int ob = 0;
  for (; ob + 2 <= nb; ob += 2) block<MR, 2>(p, in, e, out, grp, ob, oh, ow0, asum);
  if (ob < nb) block<MR, 1>(p, in, e, out, grp, ob, oh, ow0, asum);
}

// ------------------------------------------------ pixels as lanes (mode 4)
// The transposed orientation, for layers with many pixels and few channels:
// the weights make the tables and the activations the indices. For an output
// channel o, a tap and a channel pair, W[m] = q0 (m & a_max) + q1 (m >> b),
// m = a0 | a1 << b (b = activation bits <= 2, so m fits pshufb's 4-bit index);
// one pshufb of W by 16 consecutive output pixels' activation-pair indices
// gives those 16 pixels' partial sums for o. The indices come from planes
// built once per call from the NHWC input (per input row, per pair, per
// column phase modulo the stride, so that 16 outputs' inputs of one tap are
// 16 consecutive bytes; padding columns and rows are 0, whose table entry is 0),
// so the inner loop is a table load, a pshufb and a byte add: no scalar work.
// Tables take 16 bytes per (channel, tap, pair), so this mode is for layers
// whose tables stay small (ResNet20's: at most 288 KiB).

constexpr int kPx = 32;  // output pixels per block, at most (the lanes of a ymm)
constexpr int kNO = 4;   // output channels per block

struct PlaneGeom {
  int cp, tlen, rows, ih_lo;
  size_t row_bytes;  // one input row: [pair][phase][tlen]
};

PlaneGeom plane_geom(const ConvGeom& g, int oh0, int oh1) {
  PlaneGeom pg;
  pg.cp = g.cin_g / 2;
  pg.tlen = std::max(g.out_w + kPx + (g.kw - 1) / g.sw + 1, (g.in_w + g.pw) / g.sw + 1);
  pg.ih_lo = oh0 * g.sh - g.ph;
  pg.rows = (oh1 - 1) * g.sh - g.ph + g.kh - pg.ih_lo;
  pg.row_bytes = static_cast<size_t>(pg.cp) * g.sw * pg.tlen;
  return pg;
}

// Activation-pair indices of the input rows that output rows [oh0, oh1) read.
// Also each input pixel's sum of codes, in the same [row][phase][tlen] order
// (uint16: at most cin_g a_max), for sum(a) over 16 outputs' receptive fields.
void build_planes(const PackedQConv& p, const uint8_t* in, const PlaneGeom& pg,
                  std::vector<uint8_t>& planes, std::vector<uint16_t>& sums) {
  const ConvGeom& g = p.g;
  planes.assign(pg.row_bytes * pg.rows + 64, 0);
  const size_t sum_row = static_cast<size_t>(g.sw) * pg.tlen;
  sums.assign(sum_row * pg.rows + 16, 0);
  const int b = p.a_max == 1 ? 1 : 2;
  const uint8_t am = static_cast<uint8_t>(p.a_max);
  const size_t jstride = static_cast<size_t>(g.sw) * pg.tlen;
  const int r0 = std::max(0, pg.ih_lo), r1 = std::min(g.in_h, pg.ih_lo + pg.rows);
  for (int ih = r0; ih < r1; ++ih) {
    uint8_t* row = planes.data() + pg.row_bytes * (ih - pg.ih_lo);
    for (int iw = 0; iw < g.in_w; ++iw) {
      const int c = iw + g.pw;
      const size_t col = static_cast<size_t>(c % g.sw) * pg.tlen + c / g.sw;
      uint8_t* dst = row + col;
      const uint8_t* px = in + (static_cast<size_t>(ih) * g.in_w + iw) * g.in_c;
      sums[sum_row * (ih - pg.ih_lo) + col] = static_cast<uint16_t>(pixel_sum(px, g.cin_g));
      for (int j = 0; j < pg.cp; ++j)
        dst[j * jstride] = static_cast<uint8_t>((px[2 * j] & am) | ((px[2 * j + 1] & am) << b));
    }
  }
}

// Byte vectors of PX lanes: 16 (xmm) or 32 (ymm: the same table broadcast to
// both halves, 32 consecutive outputs as indices).
template <int PX>
struct Lanes;
template <>
struct Lanes<16> {
  using V = __m128i;
  static V zero() { return _mm_setzero_si128(); }
  static V load(const uint8_t* p) { return _mm_loadu_si128(reinterpret_cast<const V*>(p)); }
  static V table(const int8_t* p) { return _mm_loadu_si128(reinterpret_cast<const V*>(p)); }
  static V lookup(V t, V i) { return _mm_shuffle_epi8(t, i); }
  static V add8(V a, V b) { return _mm_add_epi8(a, b); }
  static V add16(V a, V b) { return _mm_add_epi16(a, b); }
  static V lo(V a) { return _mm_unpacklo_epi8(a, _mm_setzero_si128()); }
  static V hi(V a) { return _mm_unpackhi_epi8(a, _mm_setzero_si128()); }
  // lo/hi hold lanes 0-7 and 8-15 as uint16.
  static void store16(V lo, V hi, uint16_t* out) {
    _mm_storeu_si128(reinterpret_cast<V*>(out), lo);
    _mm_storeu_si128(reinterpret_cast<V*>(out + 8), hi);
  }
};
template <>
struct Lanes<32> {
  using V = __m256i;
  static V zero() { return _mm256_setzero_si256(); }
  static V load(const uint8_t* p) { return _mm256_loadu_si256(reinterpret_cast<const V*>(p)); }
  static V table(const int8_t* p) {
    return _mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
  }
  static V lookup(V t, V i) { return _mm256_shuffle_epi8(t, i); }
  static V add8(V a, V b) { return _mm256_add_epi8(a, b); }
  static V add16(V a, V b) { return _mm256_add_epi16(a, b); }
  static V lo(V a) { return _mm256_unpacklo_epi8(a, _mm256_setzero_si256()); }
  static V hi(V a) { return _mm256_unpackhi_epi8(a, _mm256_setzero_si256()); }
  // Unpacking works per 128-bit half: lo = lanes 0-7 | 16-23, hi = 8-15 | 24-31.
  static void store16(V lo, V hi, uint16_t* out) {
    _mm256_storeu_si256(reinterpret_cast<V*>(out), _mm256_permute2x128_si256(lo, hi, 0x20));
    _mm256_storeu_si256(reinterpret_cast<V*>(out + 16), _mm256_permute2x128_si256(lo, hi, 0x31));
  }
};

template <int PX>
void pixels_rows(const PackedQConv& p, const uint8_t* in, const Epilogue& e, void* out, int oh0,
                 int oh1) {
  using L = Lanes<PX>;
  using V = typename L::V;
  const ConvGeom& g = p.g;
  const PlaneGeom pg = plane_geom(g, oh0, oh1);
  thread_local std::vector<uint8_t> planes;
  thread_local std::vector<uint16_t> sums;
  thread_local std::vector<int32_t> tile;
  build_planes(p, in, pg, planes, sums);
  const size_t sum_row = static_cast<size_t>(g.sw) * pg.tlen;
  const int nob = (g.cout_g + kNO - 1) / kNO;
  const int cpad = nob * kNO;
  tile.resize(static_cast<size_t>(PX) * cpad);
  const size_t jstride = static_cast<size_t>(g.sw) * pg.tlen;
  const size_t tab_per_ob = static_cast<size_t>(g.kh) * g.kw * pg.cp * kNO * 16;
  const int u8_steps = p.i16_steps;
  // Each tap column's offset in a plane row: its phase's segment, then s / sw.
  std::vector<size_t> tap_col(g.kw);
  for (int s = 0; s < g.kw; ++s)
    tap_col[s] = static_cast<size_t>(s % g.sw) * pg.tlen + static_cast<size_t>(s / g.sw);
  for (int oh = oh0; oh < oh1; ++oh)
    for (int ow0 = 0; ow0 < g.out_w; ow0 += PX) {
      const int npx = std::min(PX, g.out_w - ow0);
      // sum(a) of the outputs: one 16-lane load per tap and 16 outputs from the
      // sums plane (uint16: at most K a_max <= 65535 / n_w).
      alignas(32) uint16_t asum[PX];
      for (int h = 0; h < PX; h += 16) {
        __m256i as = _mm256_setzero_si256();
        for (int r = 0; r < g.kh; ++r) {
          const uint16_t* srow =
              sums.data() + sum_row * (oh * g.sh - g.ph + r - pg.ih_lo) + ow0 + h;
          for (int s = 0; s < g.kw; ++s)
            as = _mm256_add_epi16(
                as, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(srow + tap_col[s])));
        }
        _mm256_store_si256(reinterpret_cast<__m256i*>(asum + h), as);
      }
      for (int ob = 0; ob < nob; ++ob) {
        const int8_t* tab = p.w8.data() + ob * tab_per_ob;
        V acc8[kNO], lo16[kNO], hi16[kNO];
        for (int o = 0; o < kNO; ++o) acc8[o] = lo16[o] = hi16[o] = L::zero();
        int cnt = 0;
        for (int r = 0; r < g.kh; ++r) {
          const uint8_t* row =
              planes.data() + pg.row_bytes * (oh * g.sh - g.ph + r - pg.ih_lo) + ow0;
          for (int s = 0; s < g.kw; ++s) {
            const uint8_t* ip = row + tap_col[s];
            for (int j = 0; j < pg.cp; ++j, ip += jstride) {
              const V idx = L::load(ip);
              for (int o = 0; o < kNO; ++o)
                acc8[o] = L::add8(acc8[o], L::lookup(L::table(tab + 16 * o), idx));
              tab += kNO * 16;
              if (++cnt == u8_steps) {
                for (int o = 0; o < kNO; ++o) {
                  lo16[o] = L::add16(lo16[o], L::lo(acc8[o]));
                  hi16[o] = L::add16(hi16[o], L::hi(acc8[o]));
                  acc8[o] = L::zero();
                }
                cnt = 0;
              }
            }
          }
        }
        for (int o = 0; o < kNO; ++o) {
          lo16[o] = L::add16(lo16[o], L::lo(acc8[o]));
          hi16[o] = L::add16(hi16[o], L::hi(acc8[o]));
          alignas(32) uint16_t s16[PX];
          L::store16(lo16[o], hi16[o], s16);
          for (int i = 0; i < npx; ++i) tile[static_cast<size_t>(i) * cpad + ob * kNO + o] = s16[i];
        }
      }
      for (int i = 0; i < npx; ++i) {
        const int ow = ow0 + i;
        const size_t idx0 = (static_cast<size_t>(oh) * g.out_w + ow) * g.out_c;
        const __m256i corr = _mm256_set1_epi32(p.n_w * asum[i]);
        const int32_t* sv = tile.data() + static_cast<size_t>(i) * cpad;
        for (int c0 = 0; c0 < g.cout_g; c0 += 8) {
          const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(sv + c0));
          const __m256i acc = _mm256_sub_epi32(_mm256_add_epi32(v, v), corr);
          if (c0 + 8 <= g.cout_g) {
            epilogue8(e, _mm256_cvtepi32_ps(acc), oh, ow, c0, out, idx0 + c0);
          } else {
            alignas(32) int32_t tmp[8];
            _mm256_store_si256(reinterpret_cast<__m256i*>(tmp), acc);
            for (int k = 0; c0 + k < g.cout_g; ++k)
              epilogue_store(e, static_cast<float>(tmp[k]), oh, ow, c0 + k, out, idx0 + c0 + k);
          }
        }
      }
    }
}

}  // namespace

bool lut_applicable(const ConvGeom& g, int wbits, int a_max) {
  // Pairs of channels never straddle a group; the table index needs a_max to
  // be a bit mask (codes are 0..2^bits - 1).
  return wbits >= 1 && wbits <= 2 && a_max >= 1 && a_max <= 7 && (a_max & (a_max + 1)) == 0 &&
         g.cin_g % 2 == 0;
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

bool lut_pixels_applicable(const ConvGeom& g, int wbits, int a_max) {
  if (wbits < 1 || wbits > 2 || (a_max != 1 && a_max != 3) || g.groups != 1 || g.cin_g % 2 != 0 ||
      g.out_w < kPx / 2) {
    return false;
  }
  const size_t taps = static_cast<size_t>(g.kh) * g.kw;
  const size_t table_bytes = ((g.cout_g + kNO - 1) / kNO) * kNO * taps * (g.cin_g / 2) * 16;
  const long s_max = static_cast<long>(taps) * g.cin_g * format::max_code(wbits) * a_max;
  return table_bytes <= (512u << 10) && s_max <= 65535;
}

void lut_pixels_pack(const ConvGeom& g, const uint8_t* codes, int wbits, int a_max,
                     PackedQConv* p) {
  p->g = g;
  p->wbits = wbits;
  p->n_w = format::max_code(wbits);
  p->a_max = a_max;
  p->mode = kQConvModeLutPixels;
  const int cp = g.cin_g / 2;
  p->cq = cp;
  const int taps = g.kh * g.kw;
  const int nob = (g.cout_g + kNO - 1) / kNO;
  const int b = a_max == 1 ? 1 : 2;
  p->w8.assign(static_cast<size_t>(nob) * taps * cp * kNO * 16, 0);
  p->w16.clear();
  p->lut.clear();
  p->lut_flush = 0;
  for (int oc = 0; oc < g.cout_g; ++oc)
    for (int t = 0; t < taps; ++t)
      for (int j = 0; j < cp; ++j) {
        const int q0 = codes[(static_cast<size_t>(oc) * g.cin_g + 2 * j) * taps + t];
        const int q1 = codes[(static_cast<size_t>(oc) * g.cin_g + 2 * j + 1) * taps + t];
        int8_t* w = p->w8.data() +
                    ((((static_cast<size_t>(oc / kNO) * taps + t) * cp + j) * kNO + oc % kNO) * 16);
        for (int m = 0; m < 16; ++m)
          w[m] = static_cast<int8_t>(q0 * (m & a_max) + q1 * ((m >> b) & a_max));
      }
  p->i16_steps = std::max(1, 255 / pair_max(p->n_w, a_max));
  p->zeros.clear();
}

void lut_pixels_run_rows(const PackedQConv& p, const uint8_t* in, const Epilogue& e, void* out,
                         int oh0, int oh1) {
  // 32 lanes when rows are long enough to fill most of them.
  if (p.g.out_w >= 24) {
    pixels_rows<32>(p, in, e, out, oh0, oh1);
  } else {
    pixels_rows<16>(p, in, e, out, oh0, oh1);
  }
}

void lut_run_rows(const PackedQConv& p, const uint8_t* in, const Epilogue& e, void* out, int oh0,
                  int oh1) {
  const ConvGeom& g = p.g;
  for (int oh = oh0; oh < oh1; ++oh)
    for (int grp = 0; grp < g.groups; ++grp) {
      int ow = 0;
      for (; ow + kMR <= g.out_w; ow += kMR) pixels<kMR>(p, in, e, out, grp, oh, ow);
      switch (g.out_w - ow) {
        case 3:
          pixels<3>(p, in, e, out, grp, oh, ow);
          break;
        case 2:
          pixels<2>(p, in, e, out, grp, oh, ow);
          break;
        case 1:
          pixels<1>(p, in, e, out, grp, oh, ow);
          break;
        default:
          break;
      }
    }
}

}  // namespace pactq::rt::kernels
