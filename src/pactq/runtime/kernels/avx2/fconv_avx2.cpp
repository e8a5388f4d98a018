// AVX2 float conv (fp first/last layers): the blocked body of
// fconv_blocked.h with 2 pixels x 32 channels (8 ymm accumulators) when the
// group has 32 output channels or more (ImageNet stems: 64), else 4 pixels x
// 16 channels (CIFAR stems: 16; a 32-channel block would be half empty).
// Measured on Zen 1 (PreAct-ResNet18 stem, 7x7/2, 3 -> 64): 2x32 25 GFLOPS,
// 4x16 20.6, 1x64 22; 3x32 needs 17 registers and GCC spills two accumulators.
#include <immintrin.h>

#include "pactq/runtime/kernels/avx2/epilogue_avx2.h"
#include "pactq/runtime/kernels/fconv_blocked.h"

namespace pactq::rt::kernels {
namespace {

struct V256 {
  using Reg = __m256;
  static constexpr int kLanes = 8;
  static Reg zero() { return _mm256_setzero_ps(); }
  static Reg set1(float x) { return _mm256_set1_ps(x); }
  static Reg fma(Reg a, Reg b, Reg c) { return _mm256_fmadd_ps(a, b, c); }
  static Reg load(const float* p, int valid) {
    if (valid >= 8) return _mm256_loadu_ps(p);
    // Lane k is loaded when k < valid (sign bit of the mask lane set).
    const __m256i lanes = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    const __m256i m = _mm256_cmpgt_epi32(_mm256_set1_epi32(valid), lanes);
    return _mm256_maskload_ps(p, m);
  }
  static void store(const Epilogue& e, Reg acc, int oh, int ow, int c0, int valid, void* out,
                    size_t idx) {
    if (valid >= 8) {
      epilogue8(e, acc, oh, ow, c0, out, idx);
      return;
    }
    alignas(32) float tmp[8];
    _mm256_store_ps(tmp, acc);
    for (int k = 0; k < valid; ++k) epilogue_store(e, tmp[k], oh, ow, c0 + k, out, idx + k);
  }
};

}  // namespace

void fconv_rows_avx2_impl(const PackedFConv& p, const void* in, bool in_codes, float in_scale,
                          const Epilogue& e, void* out, int oh_begin, int oh_end) {
  const bool wide = p.g.cout_g >= 32;
  if (in_codes) {
    if (wide)
      return fconv_blocked_rows<V256, 2, 4, true>(p, in, in_scale, e, out, oh_begin, oh_end);
    return fconv_blocked_rows<V256, 4, 2, true>(p, in, in_scale, e, out, oh_begin, oh_end);
  }
  if (wide) return fconv_blocked_rows<V256, 2, 4, false>(p, in, in_scale, e, out, oh_begin, oh_end);
  fconv_blocked_rows<V256, 4, 2, false>(p, in, in_scale, e, out, oh_begin, oh_end);
}

}  // namespace pactq::rt::kernels
