// Run-time ISA selection shared by the trainer's fused kernels and the
// runtime's kernels: one rule for both worlds. Torch-free, header-only.
//
// The selection is the best ISA the CPU has, capped by the environment
// variable PACTQ_ISA (read once per process):
//   ref         scalar reference kernels everywhere
//   avx2        at most the AVX2 kernels (to compare variants on one machine)
//   avx512vnni  at most the AVX-512 VNNI kernels
//   amx         at most the AMX kernels (no cap today)
//   unset/empty no cap
// A cap above what the CPU has selects what the CPU has. An unknown value is
// reported once on stderr and treated as unset (as ATen does for
// ATEN_CPU_CAPABILITY), so a typo cannot silently change what is measured.
#pragma once
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <initializer_list>

#if defined(__linux__) && defined(__x86_64__)
#include <cpuid.h>
#include <sys/syscall.h>
#include <unistd.h>
#endif

namespace pactq {

// The ISAs pactq has kernels for, in increasing order of capability.
enum class Isa { kRef = 0, kAvx2 = 1, kAvx512Vnni = 2, kAmx = 3 };
constexpr Isa kTopIsa = Isa::kAmx;

inline const char* isa_name(Isa isa) {
  switch (isa) {
    case Isa::kAvx2:
      return "avx2";
    case Isa::kAvx512Vnni:
      return "avx512vnni";
    case Isa::kAmx:
      return "amx";
    default:
      return "ref";
  }
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

// The CPU and OS can run the AMX kernels (which fall back to the AVX-512 VNNI
// ones for what tiles do not serve): AMX-TILE and AMX-INT8 (CPUID leaf 7),
// tile state enabled in XCR0 (bits 17, 18), and, on Linux, the process's
// permission to use it (arch_prctl ARCH_REQ_XCOMP_PERM, asked once here:
// without it the first tile instruction faults).
inline bool cpu_has_amx_int8() {
#if defined(__linux__) && defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
  static const bool usable = [] {
    if (!cpu_has_avx512_vnni()) return false;
    unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
    if (!__get_cpuid_count(7, 0, &eax, &ebx, &ecx, &edx)) return false;
    const bool tile = (edx >> 24) & 1u, int8 = (edx >> 25) & 1u;
    if (!tile || !int8) return false;
    unsigned lo = 0, hi = 0;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0u));
    if (((lo >> 17) & 3u) != 3u) return false;
    constexpr long kArchReqXcompPerm = 0x1023;
    constexpr long kXfeatureXtiledata = 18;
    return syscall(SYS_arch_prctl, kArchReqXcompPerm, kXfeatureXtiledata) == 0;
  }();
  return usable;
#else
  return false;
#endif
}

// An AMD Zen 1 / Zen+ core (family 17h, models below 30h): 256-bit ops run
// as two 128-bit halves and one pipe multiplies bytes while two shuffle, so
// kernels that trade multiplies for table lookups pay there (measured) and
// not on CPUs with two full-width byte multipliers (Intel, later Zen).
inline bool cpu_is_amd_zen1() {
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
  unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
  if (!__get_cpuid(0, &eax, &ebx, &ecx, &edx)) return false;
  const bool amd = ebx == 0x68747541u && edx == 0x69746e65u && ecx == 0x444d4163u;  // AuthenticAMD
  if (!amd || !__get_cpuid(1, &eax, &ebx, &ecx, &edx)) return false;
  const unsigned base_family = (eax >> 8) & 0xfu;
  const unsigned family = base_family == 0xfu ? base_family + ((eax >> 20) & 0xffu) : base_family;
  const unsigned model =
      ((eax >> 4) & 0xfu) | (base_family == 0xfu ? ((eax >> 16) & 0xfu) << 4 : 0u);
  return family == 0x17u && model < 0x30u;
#else
  return false;
#endif
}

// The best ISA this CPU can run.
inline Isa cpu_best_isa() {
  if (cpu_has_amx_int8()) return Isa::kAmx;
  if (cpu_has_avx512_vnni()) return Isa::kAvx512Vnni;
  if (cpu_has_avx2_fma()) return Isa::kAvx2;
  return Isa::kRef;
}

// The cap a PACTQ_ISA value asks for: nullptr and "" mean no cap; an unknown
// value warns on `warn` (when non-null) and means no cap.
inline Isa isa_cap_from_env_value(const char* value, std::FILE* warn) {
  if (value == nullptr || value[0] == '\0') return kTopIsa;
  for (Isa isa : {Isa::kRef, Isa::kAvx2, Isa::kAvx512Vnni, Isa::kAmx})
    if (std::strcmp(value, isa_name(isa)) == 0) return isa;
  if (warn != nullptr) {
    std::fprintf(warn,
                 "pactq: warning: ignoring PACTQ_ISA=%s: unknown value; valid values are ref, "
                 "avx2, avx512vnni, amx, or unset for the best the CPU has\n",
                 value);
  }
  return kTopIsa;
}

// THE selection: min(PACTQ_ISA cap, what the CPU has), decided once per
// process (so the warning, if any, is printed once).
inline Isa selected_isa() {
  static const Isa selected = [] {
    const Isa cap = isa_cap_from_env_value(std::getenv("PACTQ_ISA"), stderr);
    const Isa cpu = cpu_best_isa();
    return cap < cpu ? cap : cpu;
  }();
  return selected;
}

// Kernels for `isa` may run: the CPU has it and PACTQ_ISA does not cap below it.
inline bool isa_selected_at_least(Isa isa) {
  return selected_isa() >= isa;
}

}  // namespace pactq
