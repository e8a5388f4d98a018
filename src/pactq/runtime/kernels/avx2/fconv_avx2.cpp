// The float conv compiled for AVX2 (same source as the reference: bit-identical).
#include "pactq/runtime/kernels/fconv_impl.h"

namespace pactq::rt::kernels {

void fconv_rows_avx2_impl(const PackedFConv& p, const void* in, bool in_codes, float in_scale,
                          const Epilogue& e, void* out, int oh_begin, int oh_end) {
  fconv_rows_impl(p, in, in_codes, in_scale, e, out, oh_begin, oh_end);
}

}  // namespace pactq::rt::kernels
