// AVX-512 float conv (fp first/last layers): the blocked body of
// fconv_blocked.h, pixels x 16-channel vectors by the layer's width (below).
#include <immintrin.h>

#include "pactq/runtime/kernels/avx512/epilogue_avx512.h"
#include "pactq/runtime/kernels/fconv_blocked.h"

namespace pactq::rt::kernels {
namespace {

struct V512 {
  using Reg = __m512;
  static constexpr int kLanes = 16;
  static Reg zero() { return _mm512_setzero_ps(); }
  static Reg set1(float x) { return _mm512_set1_ps(x); }
  static Reg fma(Reg a, Reg b, Reg c) { return _mm512_fmadd_ps(a, b, c); }
  static __mmask16 mask(int valid) {
    return valid >= 16 ? static_cast<__mmask16>(0xffff)
                       : static_cast<__mmask16>((1u << (valid > 0 ? valid : 0)) - 1u);
  }
  static Reg load(const float* p, int valid) { return _mm512_maskz_loadu_ps(mask(valid), p); }
  static void store(const Epilogue& e, Reg acc, int oh, int ow, int c0, int valid, void* out,
                    size_t idx) {
    epilogue16(e, acc, oh, ow, c0, mask(valid), out, idx);
  }
};

}  // namespace

template <int MR, int NB, bool kWeightsInRegs = false>
void fconv_rows_avx512_block(const PackedFConv& p, const void* in, bool in_codes, float in_scale,
                             const Epilogue& e, void* out, int oh_begin, int oh_end) {
  if (in_codes) {
    fconv_blocked_rows<V512, MR, NB, true, kWeightsInRegs>(p, in, in_scale, e, out, oh_begin, oh_end);
  } else {
    fconv_blocked_rows<V512, MR, NB, false, kWeightsInRegs>(p, in, in_scale, e, out, oh_begin, oh_end);
  }
}

// Blocks by output channels (one Zen 5 core, FMA): 64 channels (PreAct-ResNet18's
// 7x7 stem) 6 x 4 vectors 180 GFLOPS (86% of the FMA peak; 8 x 1: 111, 8 x 2:
// 163, 4 x 4: 176); 16 channels (ResNet20's stem) 8 x 1 74 (6 x 4: 42); on a
// Xeon with AMX 16 x 1 with the weight vector kept in a register 73 against
// 8 x 1's 65 (12 x 1: 67).
void fconv_rows_avx512_impl(const PackedFConv& p, const void* in, bool in_codes, float in_scale,
                            const Epilogue& e, void* out, int oh_begin, int oh_end) {
  // 96 channels (AlexNet-BN's 11x11 stem): 4 x 6 vectors, not 6 x 4 with a
  // half-empty second block (one Xeon core with AMX: 130 -> 143 GFLOPS; 2
  // threads 243 -> 306). 8 x 3 would need 8 broadcasts live beside 24 sums.
  if (p.g.cout_g % 64 != 0 && p.g.cout_g % 96 == 0)
    return fconv_rows_avx512_block<4, 6>(p, in, in_codes, in_scale, e, out, oh_begin, oh_end);
  if (p.g.cout_g >= 64)
    return fconv_rows_avx512_block<6, 4>(p, in, in_codes, in_scale, e, out, oh_begin, oh_end);
  if (p.g.cout_g >= 32)
    return fconv_rows_avx512_block<8, 2>(p, in, in_codes, in_scale, e, out, oh_begin, oh_end);
  fconv_rows_avx512_block<16, 1, true>(p, in, in_codes, in_scale, e, out, oh_begin, oh_end);
}

}  // namespace pactq::rt::kernels
