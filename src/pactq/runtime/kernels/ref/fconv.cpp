// Float conv (fp first/last layers): packing and the scalar reference that
// the AVX2 / AVX-512 variants are tested against.
#include <algorithm>

#include "pactq/runtime/kernels/fconv_impl.h"

namespace pactq::rt::kernels {

void fconv_pack(const ConvGeom& g, const float* w, PackedFConv* p) {
  p->g = g;
  const size_t taps = static_cast<size_t>(g.kh) * g.kw;
  p->w.assign(static_cast<size_t>(g.groups) * taps * g.cin_g * g.cout_g, 0.f);
  for (int oc = 0; oc < g.out_c; ++oc) {
    const int grp = oc / g.cout_g, j = oc % g.cout_g;
    for (int ci = 0; ci < g.cin_g; ++ci)
      for (size_t t = 0; t < taps; ++t)
        p->w[((static_cast<size_t>(grp) * taps + t) * g.cin_g + ci) * g.cout_g + j] =
            w[(static_cast<size_t>(oc) * g.cin_g + ci) * taps + t];
  }
}

void fconv_rows_ref(const PackedFConv& p, const void* in, bool in_codes, float in_scale,
                    const Epilogue& e, void* out, int oh_begin, int oh_end) {
  fconv_rows_impl(p, in, in_codes, in_scale, e, out, oh_begin, oh_end);
}

}  // namespace pactq::rt::kernels
