// AVX-512 float conv (fp first/last layers): the blocked body of
// fconv_blocked.h with 8 pixels x 16 channels (8 zmm accumulators).
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
  static Reg add(Reg a, Reg b) { return _mm512_add_ps(a, b); }
  static Reg mul(Reg a, Reg b) { return _mm512_mul_ps(a, b); }
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

void fconv_rows_avx512_impl(const PackedFConv& p, const void* in, bool in_codes, float in_scale,
                            const Epilogue& e, void* out, int oh_begin, int oh_end) {
  if (in_codes) {
    fconv_blocked_rows<V512, 8, 1, true>(p, in, in_scale, e, out, oh_begin, oh_end);
  } else {
    fconv_blocked_rows<V512, 8, 1, false>(p, in, in_scale, e, out, oh_begin, oh_end);
  }
}

}  // namespace pactq::rt::kernels
