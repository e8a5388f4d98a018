// Run-time ISA selection shared by the trainer's fused kernels and the
// runtime's kernels: one rule for both worlds. Torch-free, header-only.
#pragma once
#include <cstdlib>
#include <cstring>

namespace pactq {

// PACTQ_ISA=ref forces the scalar reference kernels everywhere.
inline bool isa_forced_reference() {
  const char* isa = std::getenv("PACTQ_ISA");
  return isa != nullptr && std::strcmp(isa, "ref") == 0;
}

// The CPU can run the AVX2 (+FMA) kernels.
inline bool cpu_has_avx2_fma() {
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
  return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#else
  return false;
#endif
}

}  // namespace pactq
