// Register-blocked float conv body shared by the SIMD variants
// (avx2/fconv_avx2.cpp, avx512/fconv_avx512.cpp), written once over a small
// vector-traits type V:
//   V::Reg, V::kLanes, V::zero(), V::set1(float), V::fma(a, b, c) (a * b + c, one rounding),
//   V::load(const float* p, int valid)  (lanes >= valid read as 0),
//   V::store(e, acc, oh, ow, c0, valid, out, idx)  (the fused epilogue).
// A block is MR output pixels along a row x NB vectors of output channels,
// accumulated in registers; the weights of one (tap, input channel) are loaded
// once per block. Per output element the operations are exactly the
// reference's (fconv_impl.h): taps r, s, then input channels, acc = fma(x, w,
// acc), so the results are bit-identical (the epilogue stays a multiply then
// an add: compile with -ffp-contract=off). A tap outside the image, or a pixel past the row
// end, reads a zero pixel of the halo copy: fma(0, w, acc) == acc for finite weights, the
// same as the reference's skipping it.
#pragma once

#include <type_traits>

#include "pactq/runtime/kernels/halo_rows.h"
#include "pactq/runtime/kernels/kernels.h"

namespace pactq::rt::kernels {

// An input element as the reference reads it: a code times the scale, or a float.
template <bool kCodes, class Elem>
__attribute__((always_inline)) static inline float input_value(Elem x, float in_scale) {
  if constexpr (kCodes) return static_cast<float>(x) * in_scale;
  return x;
}

// acc[i][b] += x(px[i][k]) * w[k][b] for k in [0, n), in the reference's
// order. w rows are `ldw` floats apart; `rem` output channels remain from the
// block's first (lanes past it read as 0); kFull (rem covers the block) drops
// the masked loads and their mask registers. Force-inlined with fully unrolled
// pixel and vector loops: acc is then indexed by constants only and lives in
// registers (a lambda or a runtime index put it on the stack, 2x slower).
template <class V, int MR, int NB, bool kCodes, bool kFull, class Elem, bool kWeightsInRegs>
__attribute__((always_inline)) static inline void fconv_accumulate(typename V::Reg (&acc)[MR][NB],
                                                                   const Elem* const (&px)[MR],
                                                                   const float* w, int n,
                                                                   size_t ldw, int rem,
                                                                   float in_scale) {
  using Reg = typename V::Reg;
  if constexpr (kWeightsInRegs) {
    // The NB weight vectors stay in registers and each pixel's broadcast is
    // used at once: long pixel blocks of few vectors, whose MR broadcasts
    // would not fit the register file beside the MR x NB sums.
    for (int k = 0; k < n; ++k) {
      const float* wk = w + static_cast<size_t>(k) * ldw;
      Reg wv[NB];
#pragma GCC unroll 16
      for (int b = 0; b < NB; ++b)
        wv[b] = kFull ? V::load(wk + b * V::kLanes, V::kLanes)
                      : V::load(wk + b * V::kLanes, rem - b * V::kLanes);
#pragma GCC unroll 16
      for (int i = 0; i < MR; ++i) {
        const Reg x = V::set1(input_value<kCodes>(px[i][k], in_scale));
#pragma GCC unroll 16
        for (int b = 0; b < NB; ++b) acc[i][b] = V::fma(x, wv[b], acc[i][b]);
      }
    }
    return;
  }
  for (int k = 0; k < n; ++k) {
    const float* wk = w + static_cast<size_t>(k) * ldw;
    Reg x[MR];
#pragma GCC unroll 16
    for (int i = 0; i < MR; ++i) {
      x[i] = V::set1(input_value<kCodes>(px[i][k], in_scale));
    }
#pragma GCC unroll 16
    for (int b = 0; b < NB; ++b) {
#pragma GCC unroll 16
      for (int i = 0; i < MR; ++i) {
        const Reg wv = kFull ? V::load(wk + b * V::kLanes, V::kLanes)
                             : V::load(wk + b * V::kLanes, rem - b * V::kLanes);
        acc[i][b] = V::fma(x[i], wv, acc[i][b]);
      }
    }
  }
}

template <class V, int MR, int NB, bool kCodes, bool kWeightsInRegs = false>
static inline void fconv_blocked_rows(const PackedFConv& p, const void* in, float in_scale,
                                      const Epilogue& e, void* out, int oh0, int oh1) {
  using Elem = std::conditional_t<kCodes, uint8_t, float>;
  using Reg = typename V::Reg;
  constexpr int kBlockC = NB * V::kLanes;
  const ConvGeom& g = p.g;
  if (oh1 <= oh0) return;
  // The input rows these outputs read, with a zero halo as wide as whole
  // pixel blocks (halo_rows.h): every block then reads a kernel row as one
  // run (no groups) or per tap, with no bounds checks and no edge path. The
  // edge blocks' per-tap set-up weighed most on 3-channel stems (one core of
  // a Xeon with AMX: ResNet20's 44.5 -> 51 GFLOPS at AVX2, 53 -> 70 at
  // AVX-512); wider layers measured the same either way.
  thread_local AlignedVector<uint8_t> halo;
  const HaloRows h =
      copy_halo_rows(g, in, oh0, oh1, whole_blocks_reach(g.out_w, MR), halo, sizeof(Elem));
  const Elem* rows = reinterpret_cast<const Elem*>(h.at);
  const size_t row_elems = h.row_bytes / sizeof(Elem);
  const size_t pix = static_cast<size_t>(g.in_c);
  const size_t ldw = static_cast<size_t>(g.cout_g);
  const size_t step = static_cast<size_t>(g.sw) * pix;
  for (int oh = oh0; oh < oh1; ++oh)
    for (int grp = 0; grp < g.groups; ++grp)
      for (int j0 = 0; j0 < g.cout_g; j0 += kBlockC)
        for (int ow0 = 0; ow0 < g.out_w; ow0 += MR) {
          const int rem = g.cout_g - j0;
          Reg acc[MR][NB];
#pragma GCC unroll 16
          for (int i = 0; i < MR; ++i)
#pragma GCC unroll 16
            for (int b = 0; b < NB; ++b) acc[i][b] = V::zero();
          const Elem* block_in = rows + static_cast<size_t>(oh - oh0) * g.sh * row_elems +
                                 static_cast<size_t>(ow0) * step +
                                 static_cast<size_t>(grp) * g.cin_g;
          // Without groups a pixel's taps s = 0..kw-1 and their channels are
          // one contiguous run of kw * cin_g inputs, as are the packed weights,
          // so a kernel row is one loop in the reference's order (s, then ci).
          const int runs = g.groups == 1 ? 1 : g.kw;
          const int run_n = g.groups == 1 ? g.kw * g.cin_g : g.cin_g;
          for (int r = 0; r < g.kh; ++r)
            for (int s = 0; s < runs; ++s) {
              const Elem* x = block_in + static_cast<size_t>(r) * row_elems + s * pix;
              const Elem* px[MR];
              for (int i = 0; i < MR; ++i) px[i] = x + i * step;
              const float* w = p.w.data() +
                               ((static_cast<size_t>(grp) * g.kh + r) * g.kw + s) * g.cin_g * ldw +
                               j0;
              if (rem >= kBlockC) {
                fconv_accumulate<V, MR, NB, kCodes, true, Elem, kWeightsInRegs>(acc, px, w, run_n,
                                                                                ldw, rem, in_scale);
              } else {
                fconv_accumulate<V, MR, NB, kCodes, false, Elem, kWeightsInRegs>(
                    acc, px, w, run_n, ldw, rem, in_scale);
              }
            }
          // Constant trip counts with guards (no early exit), for the same reason.
          const int pixels = g.out_w - ow0 < MR ? g.out_w - ow0 : MR;
#pragma GCC unroll 16
          for (int b = 0; b < NB; ++b) {
            const int jb = j0 + b * V::kLanes;
            if (jb >= g.cout_g) continue;
            const int valid = g.cout_g - jb < V::kLanes ? g.cout_g - jb : V::kLanes;
            const int c0 = grp * g.cout_g + jb;
#pragma GCC unroll 16
            for (int i = 0; i < MR; ++i) {
              if (i >= pixels) continue;
              const size_t idx = (static_cast<size_t>(oh) * g.out_w + ow0 + i) * g.out_c + c0;
              V::store(e, acc[i][b], oh, ow0 + i, c0, valid, out, idx);
            }
          }
        }
}

}  // namespace pactq::rt::kernels
