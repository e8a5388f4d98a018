// Run-time ISA selection shared by the trainer's fused kernels and the
// runtime's kernels: one rule for both worlds. Torch-free, header-only.
#pragma once
#include <cstdlib>
#include <cstring>

namespace pactq {

// The environment variable PACTQ_ISA is set to `name`.
inline bool isa_env_is(const char* name) {
  const char* isa = std::getenv("PACTQ_ISA");
  return isa != nullptr && std::strcmp(isa, name) == 0;
}

// PACTQ_ISA=ref forces the scalar reference kernels everywhere.
inline bool isa_forced_reference() {
  return isa_env_is("ref");
}

// PACTQ_ISA=avx2 caps the runtime at its AVX2 kernels on a CPU that has more
// (to compare variants on one machine).
inline bool isa_capped_at_avx2() {
  return isa_env_is("avx2");
}

// The CPU can run the AVX2 (+FMA) kernels.
inline bool cpu_has_avx2_fma() {
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
  return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#else
  return false;
#endif
}

// The CPU (and OS) can run the AVX-512 VNNI kernels: 512-bit registers, byte
// and word ops, and vpdpbusd.
inline bool cpu_has_avx512_vnni() {
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
  return cpu_has_avx2_fma() && __builtin_cpu_supports("avx512f") &&
         __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl") &&
         __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vnni");
#else
  return false;
#endif
}

}  // namespace pactq
