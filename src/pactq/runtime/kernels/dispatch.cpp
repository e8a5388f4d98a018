// The kernel set of each ISA, filled once from what the build compiled in and
// what the CPU can run; the runtime's set is chosen by the one rule in
// common/cpu_isa.h (CPU flags capped by PACTQ_ISA).
#include "pactq/common/cpu_isa.h"
#include "pactq/runtime/kernels/kernels.h"

namespace pactq::rt::kernels {

#if defined(PACTQ_HAVE_AVX2)
const QConvKernel& qconv_avx2_kernel_impl();  // kernels/avx2/qconv_avx2.cpp
void fconv_rows_avx2_impl(const PackedFConv& p, const void* in, bool in_codes, float in_scale,
                          const Epilogue& e, void* out, int oh_begin, int oh_end);
void affine_values_avx2(size_t pixels, int c, const TensorRef& x, const float* scale,
                        const float* bias, const OutputRef& out);  // kernels/avx2/values_avx2.cpp
void add_values_avx2(size_t n, const TensorRef& a, const TensorRef& b, const OutputRef& out);
void max_pool_rows_avx2(const PoolGeom& g, const void* in, bool codes, void* out, int oh0, int oh1);
#endif
#if defined(PACTQ_HAVE_AVX512)
const QConvKernel& qconv_avx512_vnni_kernel_impl();  // kernels/avx512/qconv_vnni.cpp
void fconv_rows_avx512_impl(const PackedFConv& p, const void* in, bool in_codes, float in_scale,
                            const Epilogue& e, void* out, int oh_begin, int oh_end);
void affine_values_avx512(size_t pixels, int c, const TensorRef& x, const float* scale,
                          const float* bias, const OutputRef& out);  // avx512/values_avx512.cpp
void add_values_avx512(size_t n, const TensorRef& a, const TensorRef& b, const OutputRef& out);
void max_pool_rows_avx512(const PoolGeom& g, const void* in, bool codes, void* out, int oh0,
                          int oh1);
#endif
#if defined(PACTQ_HAVE_AMX)
const QConvKernel& qconv_amx_kernel_impl();  // kernels/amx/qconv_amx.cpp
#endif

namespace {

KernelSet ref_set() {
  return {Isa::kRef, &qconv_ref_kernel(), &fconv_rows_ref, "ref",
          "ref",     &affine_values,      &add_values,     &max_pool_rows};
}

// Empty (qconv == nullptr) when not compiled in or the CPU lacks the ISA.
KernelSet avx2_set() {
#if defined(PACTQ_HAVE_AVX2)
  if (cpu_has_avx2_fma()) {
    return {Isa::kAvx2, &qconv_avx2_kernel_impl(), &fconv_rows_avx2_impl, "avx2",
            "avx2",     &affine_values_avx2,       &add_values_avx2,      &max_pool_rows_avx2};
  }
#endif
  return {};
}

KernelSet avx512_vnni_set() {
#if defined(PACTQ_HAVE_AVX512)
  if (cpu_has_avx512_vnni()) {
    return {Isa::kAvx512Vnni,
            &qconv_avx512_vnni_kernel_impl(),
            &fconv_rows_avx512_impl,
            "avx512",
            "avx512",
            &affine_values_avx512,
            &add_values_avx512,
            &max_pool_rows_avx512};
  }
#endif
  return {};
}

// AMX serves the quantized conv (and falls back to VNNI inside it for the
// layers tiles do not serve); the other families are the AVX-512 set's.
KernelSet amx_set() {
#if defined(PACTQ_HAVE_AMX)
  if (cpu_has_amx_int8()) {
    KernelSet s = avx512_vnni_set();
    s.isa = Isa::kAmx;
    s.qconv = &qconv_amx_kernel_impl();
    return s;
  }
#endif
  return {};
}

}  // namespace

const KernelSet* kernel_set(Isa isa) {
  static const KernelSet sets[] = {ref_set(), avx2_set(), avx512_vnni_set(), amx_set()};
  const KernelSet& s = sets[static_cast<int>(isa)];
  return s.qconv != nullptr ? &s : nullptr;
}

const KernelSet& selected_kernel_set() {
  static const KernelSet* chosen = [] {
    for (int i = static_cast<int>(selected_isa()); i > 0; --i) {
      if (const KernelSet* s = kernel_set(static_cast<Isa>(i))) return s;
    }
    return kernel_set(Isa::kRef);
  }();
  return *chosen;
}

}  // namespace pactq::rt::kernels
