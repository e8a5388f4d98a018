// Picks the ISA variant of each kernel family once, by the one rule in
// common/cpu_isa.h (CPU flags capped by PACTQ_ISA).
#include "pactq/common/cpu_isa.h"
#include "pactq/runtime/kernels/kernels.h"

namespace pactq::rt::kernels {

#if defined(PACTQ_HAVE_AVX2)
const QConvKernel& qconv_avx2_kernel_impl();  // kernels/avx2/qconv_avx2.cpp
void fconv_rows_avx2_impl(const PackedFConv& p, const void* in, bool in_codes, float in_scale,
                          const Epilogue& e, void* out, int oh_begin, int oh_end);
#endif
#if defined(PACTQ_HAVE_AVX512)
const QConvKernel& qconv_avx512_vnni_kernel_impl();  // kernels/avx512/qconv_vnni.cpp
void fconv_rows_avx512_impl(const PackedFConv& p, const void* in, bool in_codes, float in_scale,
                            const Epilogue& e, void* out, int oh_begin, int oh_end);
#endif

const QConvKernel* qconv_avx2_kernel() {
#if defined(PACTQ_HAVE_AVX2)
  static const bool ok = cpu_has_avx2_fma();
  if (ok) return &qconv_avx2_kernel_impl();
#endif
  return nullptr;
}

const QConvKernel* qconv_avx512_vnni_kernel() {
#if defined(PACTQ_HAVE_AVX512)
  static const bool ok = cpu_has_avx512_vnni();
  if (ok) return &qconv_avx512_vnni_kernel_impl();
#endif
  return nullptr;
}

const QConvKernel& qconv_kernel() {
  static const QConvKernel* chosen = [] {
    // A variant may also be missing from the build (non-x86): fall through.
    const QConvKernel* k = nullptr;
    if (isa_selected_at_least(Isa::kAvx512Vnni)) k = qconv_avx512_vnni_kernel();
    if (!k && isa_selected_at_least(Isa::kAvx2)) k = qconv_avx2_kernel();
    return k ? k : &qconv_ref_kernel();
  }();
  return *chosen;
}

FConvRowsFn fconv_rows_avx2() {
#if defined(PACTQ_HAVE_AVX2)
  if (qconv_avx2_kernel()) return &fconv_rows_avx2_impl;
#endif
  return nullptr;
}

FConvRowsFn fconv_rows_avx512() {
#if defined(PACTQ_HAVE_AVX512)
  if (qconv_avx512_vnni_kernel()) return &fconv_rows_avx512_impl;
#endif
  return nullptr;
}

FConvRowsFn fconv_rows_kernel() {
  static const FConvRowsFn chosen = [] {
    FConvRowsFn f = nullptr;
    if (isa_selected_at_least(Isa::kAvx512Vnni)) f = fconv_rows_avx512();
    if (!f && isa_selected_at_least(Isa::kAvx2)) f = fconv_rows_avx2();
    return f ? f : &fconv_rows_ref;
  }();
  return chosen;
}

}  // namespace pactq::rt::kernels
