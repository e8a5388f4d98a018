// Run-time ISA selection shared by the trainer's fused kernels and the
// runtime's kernels: one rule for both worlds. Torch-free, header-only.
//
// The selection is the best ISA the CPU has, capped by the environment
// variable PACTQ_ISA (read once per process):
//   ref         scalar reference kernels everywhere
//   avx2        at most the AVX2 kernels (to compare variants on one machine)
//   avx512vnni  at most the AVX-512 VNNI kernels (no cap today)
//   unset/empty no cap
// A cap above what the CPU has selects what the CPU has. An unknown value is
// reported once on stderr and treated as unset (as ATen does for
// ATEN_CPU_CAPABILITY), so a typo cannot silently change what is measured.
#pragma once
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <initializer_list>

namespace pactq {

// The ISAs pactq has kernels for, in increasing order of capability.
enum class Isa { kRef = 0, kAvx2 = 1, kAvx512Vnni = 2 };

inline const char* isa_name(Isa isa) {
  switch (isa) {
    case Isa::kAvx2:
      return "avx2";
    case Isa::kAvx512Vnni:
      return "avx512vnni";
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

// The best ISA this CPU can run.
inline Isa cpu_best_isa() {
  if (cpu_has_avx512_vnni()) return Isa::kAvx512Vnni;
  if (cpu_has_avx2_fma()) return Isa::kAvx2;
  return Isa::kRef;
}

// The cap a PACTQ_ISA value asks for: nullptr and "" mean no cap; an unknown
// value warns on `warn` (when non-null) and means no cap.
inline Isa isa_cap_from_env_value(const char* value, std::FILE* warn) {
  if (value == nullptr || value[0] == '\0') return Isa::kAvx512Vnni;
  for (Isa isa : {Isa::kRef, Isa::kAvx2, Isa::kAvx512Vnni})
    if (std::strcmp(value, isa_name(isa)) == 0) return isa;
  if (warn != nullptr) {
    std::fprintf(warn,
                 "pactq: warning: ignoring PACTQ_ISA=%s: unknown value; valid values are ref, "
                 "avx2, avx512vnni, or unset for the best the CPU has\n",
                 value);
  }
  return Isa::kAvx512Vnni;
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
