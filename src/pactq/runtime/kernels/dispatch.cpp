// Picks the ISA variant of each kernel family once.
#include <cstdlib>
#include <cstring>

#include "pactq/runtime/kernels/kernels.h"

namespace pactq::rt::kernels {

#if defined(PACTQ_HAVE_AVX2)
const QConvKernel& qconv_avx2_kernel_impl();  // kernels/avx2/qconv_avx2.cpp
#endif

const QConvKernel* qconv_avx2_kernel() {
#if defined(PACTQ_HAVE_AVX2) && (defined(__GNUC__) || defined(__clang__))
  static const bool ok = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  if (ok) return &qconv_avx2_kernel_impl();
#endif
  return nullptr;
}

const QConvKernel& qconv_kernel() {
  static const QConvKernel* chosen = [] {
    const char* isa = std::getenv("PACTQ_ISA");
    if (isa && std::strcmp(isa, "ref") == 0) return &qconv_ref_kernel();
    const QConvKernel* k = qconv_avx2_kernel();
    return k ? k : &qconv_ref_kernel();
  }();
  return *chosen;
}

}  // namespace pactq::rt::kernels
