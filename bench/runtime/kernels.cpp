// Micro-benchmarks of the runtime's conv kernels on the ResNet20 shapes, for
// every ISA variant and the 2/4/8-bit widths, reported in GOPS (2 ops per
// multiply-accumulate), plus the peaks of vpmaddubsw, vpdpbusd and fp32 FMA, and of the
// two 2-bit alternatives (bit-serial popcount, vpermb table lookup).
//   build/pactq_runtime_bench --benchmark_filter='QConv|FConv|Peak' --benchmark_repetitions=5
//   --benchmark_report_aggregates_only
#include <benchmark/benchmark.h>
#include <immintrin.h>

#include <random>
#include <vector>

#include "pactq/runtime/kernels/avx2/qconv_lut_avx2.h"
#include "pactq/runtime/kernels/kernels.h"

namespace {

namespace k = pactq::rt::kernels;
using pactq::Isa;

struct Shape {
  int hw, cin, cout, stride, k = 3;
};
// ResNet20's 3x3 convs: stage 1, the two downsampling convs, stages 2 and 3.
const Shape kShapes[] = {
    {32, 16, 16, 1}, {32, 16, 32, 2}, {16, 32, 32, 1}, {16, 32, 64, 2}, {8, 64, 64, 1}};

k::ConvGeom geometry(const Shape& s) {
  k::ConvGeom g;
  g.in_h = g.in_w = s.hw;
  g.in_c = s.cin;
  g.out_c = s.cout;
  g.kh = g.kw = s.k;
  g.sh = g.sw = s.stride;
  g.ph = g.pw = s.k / 2;
  g.out_h = (s.hw + 2 * g.ph - s.k) / s.stride + 1;
  g.out_w = g.out_h;
  g.groups = 1;
  g.cin_g = s.cin;
  g.cout_g = s.cout;
  return g;
}

void run_qconv(benchmark::State& state, const k::QConvKernel* kernel) {
  if (kernel == nullptr) {
    state.SkipWithError("ISA not available on this CPU");
    return;
  }
  const Shape& s = kShapes[state.range(0)];
  const int bits = static_cast<int>(state.range(1));
  const k::ConvGeom g = geometry(s);
  std::mt19937 rng(1);
  const int n = (1 << bits) - 1;
  std::vector<uint8_t> codes(static_cast<size_t>(g.out_c) * g.cin_g * 9);
  for (auto& c : codes) c = static_cast<uint8_t>(rng() % (n + 1));
  std::vector<uint8_t> in(static_cast<size_t>(g.in_h) * g.in_w * g.in_c + 64);
  for (auto& a : in) a = static_cast<uint8_t>(rng() % (n + 1));
  std::vector<float> scale(g.out_c, 0.01f), bias(g.out_c, 0.1f);
  std::vector<uint8_t> out(static_cast<size_t>(g.out_h) * g.out_w * g.out_c);
  k::PackedQConv packed;
  kernel->pack(g, codes.data(), bits, n, &packed);
  k::Epilogue e;
  e.scale = scale.data();
  e.bias = bias.data();
  e.out_codes = true;
  e.n_out = n;
  e.inv = 1.0f;
  for (auto _ : state) {
    kernel->run_rows(packed, packed.g, in.data(), e, out.data(), 0, g.out_h);
    benchmark::DoNotOptimize(out.data());
  }
  const double macs = static_cast<double>(g.out_h) * g.out_w * g.out_c * g.cin_g * 9;
  state.counters["GOPS"] = benchmark::Counter(
      2 * macs, benchmark::Counter::kIsIterationInvariantRate, benchmark::Counter::kIs1000);
  state.SetLabel(std::to_string(s.hw) + "x" + std::to_string(s.hw) + "x" + std::to_string(s.cin) +
                 "->" + std::to_string(s.cout) + " s" + std::to_string(s.stride) + " W" +
                 std::to_string(bits) + "A" + std::to_string(bits));
}

// A family's kernel of one ISA; nullptr when this CPU/build lacks it.
const k::QConvKernel* qconv_of(Isa isa) {
  const k::KernelSet* set = k::kernel_set(isa);
  return set ? set->qconv : nullptr;
}
k::FConvRowsFn fconv_of(Isa isa) {
  const k::KernelSet* set = k::kernel_set(isa);
  return set ? set->fconv : nullptr;
}

void BM_QConvAvx2(benchmark::State& s) {
  run_qconv(s, qconv_of(Isa::kAvx2));
}
// The AVX2 table-lookup mode forced on every shape at W2/A2 (the AVX2 kernel
// takes it only on layers of >= 64 channels and only on CPUs where it pays,
// lut_pays_on_this_cpu; W4/A4 above is the multiply-based mode the others get).
const k::QConvKernel kLutIndexByActivations{"lut", k::lut_pack, k::lut_run_rows};
void BM_QConvAvx2Lut(benchmark::State& s) {
  run_qconv(s, qconv_of(Isa::kAvx2) ? &kLutIndexByActivations : nullptr);
}
void BM_QConvAvx512Vnni(benchmark::State& s) {
  run_qconv(s, qconv_of(Isa::kAvx512Vnni));
}
void BM_QConvAmx(benchmark::State& s) {
  run_qconv(s, qconv_of(Isa::kAmx));
}
void BM_QConvRef(benchmark::State& s) {
  run_qconv(s, &k::qconv_ref_kernel());
}

// Float conv (the fp first/last layers): ResNet20's first conv
// (32x32x3 -> 16) and the 3x3 shapes above, per ISA variant.
const Shape kFirstConv = {32, 3, 16, 1};
// PreAct-ResNet18's (and ResNet18's) 7x7/2 stem at 224x224 (range -2).
const Shape kImageNetStem = {224, 3, 64, 2, 7};

void run_fconv(benchmark::State& state, k::FConvRowsFn fn) {
  if (fn == nullptr) {
    state.SkipWithError("ISA not available on this CPU");
    return;
  }
  const Shape& s = state.range(0) == -2   ? kImageNetStem
                   : state.range(0) == -1 ? kFirstConv
                                          : kShapes[state.range(0)];
  const k::ConvGeom g = geometry(s);
  std::mt19937 rng(2);
  std::normal_distribution<float> d;
  std::vector<float> w(static_cast<size_t>(g.out_c) * g.cin_g * g.kh * g.kw),
      in(g.in_h * g.in_w * g.in_c + 16);
  for (auto& v : w) v = d(rng);
  for (auto& v : in) v = d(rng);
  std::vector<float> scale(g.out_c, 1.f), bias(g.out_c, 0.f);
  std::vector<uint8_t> out(static_cast<size_t>(g.out_h) * g.out_w * g.out_c);
  k::PackedFConv packed;
  k::fconv_pack(g, w.data(), &packed);
  k::Epilogue e;
  e.scale = scale.data();
  e.bias = bias.data();
  e.out_codes = true;  // the first conv feeds a PACT layer
  e.n_out = 15;
  e.inv = 3.f;
  for (auto _ : state) {
    fn(packed, in.data(), false, 1.f, e, out.data(), 0, g.out_h);
    benchmark::DoNotOptimize(out.data());
  }
  const double macs = static_cast<double>(g.out_h) * g.out_w * g.out_c * g.cin_g * g.kh * g.kw;
  state.counters["GOPS"] = benchmark::Counter(
      2 * macs, benchmark::Counter::kIsIterationInvariantRate, benchmark::Counter::kIs1000);
  state.SetLabel(std::to_string(s.hw) + "x" + std::to_string(s.hw) + "x" + std::to_string(s.cin) +
                 "->" + std::to_string(s.cout) +
                 (s.k != 3 ? " " + std::to_string(s.k) + "x" + std::to_string(s.k) + "/" +
                                 std::to_string(s.stride)
                           : ""));
}
void BM_FConvAvx2(benchmark::State& s) {
  run_fconv(s, fconv_of(Isa::kAvx2));
}
void BM_FConvAvx512(benchmark::State& s) {
  run_fconv(s, fconv_of(Isa::kAvx512Vnni));
}

// Peak throughput of the multiply instructions on one core, the way a conv
// inner loop uses them: independent accumulator chains (10 or 12, enough to
// cover the instruction's latency), operands in registers, so only the
// execution ports limit it. Ops are counted like the conv's: 2 per
// multiply-accumulate. Written in inline asm: with intrinsics the compiler
// merges identical products (this benchmark once measured vpaddw) or drops
// the loop. The register values are irrelevant to the timing.
constexpr long kInner = 1024;

bool run_peak(benchmark::State& state, bool supported, double ops_per_inner, const char* counter,
              void (*loop)(long)) {
  if (!supported) {
    state.SkipWithError("instruction not available on this CPU");
    return false;
  }
  for (auto _ : state) loop(kInner);
  state.counters[counter] =
      benchmark::Counter(ops_per_inner * kInner, benchmark::Counter::kIsIterationInvariantRate,
                         benchmark::Counter::kIs1000);
  return true;
}

// 10 chains of acc += maddubs(acc, w): 32 u8 x s8 products per instruction.
void maddubs_loop(long n) {
  for (long i = 0; i < n; ++i) {
    asm volatile(
        "vpmaddubsw %%ymm15, %%ymm0, %%ymm10\n\t"
        "vpaddw %%ymm10, %%ymm0, %%ymm0\n\t"
        "vpmaddubsw %%ymm15, %%ymm1, %%ymm11\n\t"
        "vpaddw %%ymm11, %%ymm1, %%ymm1\n\t"
        "vpmaddubsw %%ymm15, %%ymm2, %%ymm12\n\t"
        "vpaddw %%ymm12, %%ymm2, %%ymm2\n\t"
        "vpmaddubsw %%ymm15, %%ymm3, %%ymm13\n\t"
        "vpaddw %%ymm13, %%ymm3, %%ymm3\n\t"
        "vpmaddubsw %%ymm15, %%ymm4, %%ymm14\n\t"
        "vpaddw %%ymm14, %%ymm4, %%ymm4\n\t"
        "vpmaddubsw %%ymm15, %%ymm5, %%ymm10\n\t"
        "vpaddw %%ymm10, %%ymm5, %%ymm5\n\t"
        "vpmaddubsw %%ymm15, %%ymm6, %%ymm11\n\t"
        "vpaddw %%ymm11, %%ymm6, %%ymm6\n\t"
        "vpmaddubsw %%ymm15, %%ymm7, %%ymm12\n\t"
        "vpaddw %%ymm12, %%ymm7, %%ymm7\n\t"
        "vpmaddubsw %%ymm15, %%ymm8, %%ymm13\n\t"
        "vpaddw %%ymm13, %%ymm8, %%ymm8\n\t"
        "vpmaddubsw %%ymm15, %%ymm9, %%ymm14\n\t"
        "vpaddw %%ymm14, %%ymm9, %%ymm9\n\t"
        :
        :
        : "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9", "xmm10",
          "xmm11", "xmm12", "xmm13", "xmm14");
  }
}

// 10 chains of acc += pshufb(table, index) on xmm: the table-lookup kernel's
// pair of instructions; one lookup is a W2/A2 pair (2 products), so 16 lanes
// count 64 ops.
void pshufb_loop(long n) {
  for (long i = 0; i < n; ++i) {
    asm volatile(
        "vpshufb %%xmm15, %%xmm14, %%xmm10\n\t"
        "vpaddb %%xmm10, %%xmm0, %%xmm0\n\t"
        "vpshufb %%xmm15, %%xmm13, %%xmm11\n\t"
        "vpaddb %%xmm11, %%xmm1, %%xmm1\n\t"
        "vpshufb %%xmm15, %%xmm14, %%xmm12\n\t"
        "vpaddb %%xmm12, %%xmm2, %%xmm2\n\t"
        "vpshufb %%xmm15, %%xmm13, %%xmm10\n\t"
        "vpaddb %%xmm10, %%xmm3, %%xmm3\n\t"
        "vpshufb %%xmm15, %%xmm14, %%xmm11\n\t"
        "vpaddb %%xmm11, %%xmm4, %%xmm4\n\t"
        "vpshufb %%xmm15, %%xmm13, %%xmm12\n\t"
        "vpaddb %%xmm12, %%xmm5, %%xmm5\n\t"
        "vpshufb %%xmm15, %%xmm14, %%xmm10\n\t"
        "vpaddb %%xmm10, %%xmm6, %%xmm6\n\t"
        "vpshufb %%xmm15, %%xmm13, %%xmm11\n\t"
        "vpaddb %%xmm11, %%xmm7, %%xmm7\n\t"
        "vpshufb %%xmm15, %%xmm14, %%xmm12\n\t"
        "vpaddb %%xmm12, %%xmm8, %%xmm8\n\t"
        "vpshufb %%xmm15, %%xmm13, %%xmm10\n\t"
        "vpaddb %%xmm10, %%xmm9, %%xmm9\n\t"
        :
        :
        : "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9", "xmm10",
          "xmm11", "xmm12");
  }
}

// 12 chains of acc = fma(a, w, acc) on 8 floats: oneDNN's fp32 instruction on
// an AVX2 CPU.
// 12 chains of acc = fma(a, b, acc) over register width R ("ymm", "zmm"), in
// one asm block: the registers are zeroed first (whatever a previous
// benchmark left in them, denormals or NaN, would make every FMA take a
// microcode assist: measured 200x slower) and stay the loop's own.
#define PACTQ_FMA_PEAK_ASM(R)              \
  "vxorps %%" R "0, %%" R "0, %%" R        \
  "0\n\t"                                  \
  "vxorps %%" R "1, %%" R "1, %%" R        \
  "1\n\t"                                  \
  "vxorps %%" R "2, %%" R "2, %%" R        \
  "2\n\t"                                  \
  "vxorps %%" R "3, %%" R "3, %%" R        \
  "3\n\t"                                  \
  "vxorps %%" R "4, %%" R "4, %%" R        \
  "4\n\t"                                  \
  "vxorps %%" R "5, %%" R "5, %%" R        \
  "5\n\t"                                  \
  "vxorps %%" R "6, %%" R "6, %%" R        \
  "6\n\t"                                  \
  "vxorps %%" R "7, %%" R "7, %%" R        \
  "7\n\t"                                  \
  "vxorps %%" R "8, %%" R "8, %%" R        \
  "8\n\t"                                  \
  "vxorps %%" R "9, %%" R "9, %%" R        \
  "9\n\t"                                  \
  "vxorps %%" R "10, %%" R "10, %%" R      \
  "10\n\t"                                 \
  "vxorps %%" R "11, %%" R "11, %%" R      \
  "11\n\t"                                 \
  "vxorps %%" R "14, %%" R "14, %%" R      \
  "14\n\t"                                 \
  "vxorps %%" R "15, %%" R "15, %%" R      \
  "15\n\t"                                 \
  "1:\n\t"                                 \
  "vfmadd231ps %%" R "15, %%" R "14, %%" R \
  "0\n\t"                                  \
  "vfmadd231ps %%" R "15, %%" R "14, %%" R \
  "1\n\t"                                  \
  "vfmadd231ps %%" R "15, %%" R "14, %%" R \
  "2\n\t"                                  \
  "vfmadd231ps %%" R "15, %%" R "14, %%" R \
  "3\n\t"                                  \
  "vfmadd231ps %%" R "15, %%" R "14, %%" R \
  "4\n\t"                                  \
  "vfmadd231ps %%" R "15, %%" R "14, %%" R \
  "5\n\t"                                  \
  "vfmadd231ps %%" R "15, %%" R "14, %%" R \
  "6\n\t"                                  \
  "vfmadd231ps %%" R "15, %%" R "14, %%" R \
  "7\n\t"                                  \
  "vfmadd231ps %%" R "15, %%" R "14, %%" R \
  "8\n\t"                                  \
  "vfmadd231ps %%" R "15, %%" R "14, %%" R \
  "9\n\t"                                  \
  "vfmadd231ps %%" R "15, %%" R "14, %%" R \
  "10\n\t"                                 \
  "vfmadd231ps %%" R "15, %%" R "14, %%" R \
  "11\n\t"                                 \
  "dec %0\n\t"                             \
  "jnz 1b\n\t"

void fma256_loop(long n) {
  if (n <= 0) return;
  asm volatile(PACTQ_FMA_PEAK_ASM("ymm")
               : "+r"(n)
               :
               : "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9",
                 "xmm10", "xmm11", "xmm14", "xmm15", "cc");
}

// 12 chains of acc = dpbusd(acc, a, w): 64 u8 x s8 products into int32.
void dpbusd_loop(long n) {
  for (long i = 0; i < n; ++i) {
    asm volatile(
        "vpdpbusd %%zmm15, %%zmm14, %%zmm0\n\t"
        "vpdpbusd %%zmm15, %%zmm14, %%zmm1\n\t"
        "vpdpbusd %%zmm15, %%zmm14, %%zmm2\n\t"
        "vpdpbusd %%zmm15, %%zmm14, %%zmm3\n\t"
        "vpdpbusd %%zmm15, %%zmm14, %%zmm4\n\t"
        "vpdpbusd %%zmm15, %%zmm14, %%zmm5\n\t"
        "vpdpbusd %%zmm15, %%zmm14, %%zmm6\n\t"
        "vpdpbusd %%zmm15, %%zmm14, %%zmm7\n\t"
        "vpdpbusd %%zmm15, %%zmm14, %%zmm8\n\t"
        "vpdpbusd %%zmm15, %%zmm14, %%zmm9\n\t"
        "vpdpbusd %%zmm15, %%zmm14, %%zmm10\n\t"
        "vpdpbusd %%zmm15, %%zmm14, %%zmm11\n\t"
        :
        :
        : "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9", "xmm10",
          "xmm11");
  }
}

// 12 chains of acc = fma(a, w, acc) on 16 floats: the fp32 baseline's
// instruction (oneDNN uses it on an AVX-512 CPU).
void fma512_loop(long n) {
  if (n <= 0) return;
  asm volatile(PACTQ_FMA_PEAK_ASM("zmm")
               : "+r"(n)
               :
               : "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9",
                 "xmm10", "xmm11", "xmm14", "xmm15", "cc");
}

// The two ways a 2-bit kernel could beat one product per byte lane, as peaks
// to set against dpbusd's (docs/benchmarks.md, "2 bits"):
// bit-serial: W2/A2 dot products from bit planes, sum over the 4 plane pairs
// (a_i, q_j) of 2^(i+j) popcount(a_i & q_j); one and + popcnt + add per plane
// pair covers 512 lanes, so 4 triples are 512 2-bit products (1024 ops).
__attribute__((target("avx512f"))) void bitserial_loop(long n) {
  for (long i = 0; i < n; ++i) {
    asm volatile(
        "vpandq %%zmm12, %%zmm14, %%zmm16\n\t"
        "vpopcntq %%zmm16, %%zmm16\n\t"
        "vpaddq %%zmm16, %%zmm0, %%zmm0\n\t"
        "vpandq %%zmm13, %%zmm14, %%zmm17\n\t"
        "vpopcntq %%zmm17, %%zmm17\n\t"
        "vpaddq %%zmm17, %%zmm1, %%zmm1\n\t"
        "vpandq %%zmm12, %%zmm15, %%zmm18\n\t"
        "vpopcntq %%zmm18, %%zmm18\n\t"
        "vpaddq %%zmm18, %%zmm2, %%zmm2\n\t"
        "vpandq %%zmm13, %%zmm15, %%zmm19\n\t"
        "vpopcntq %%zmm19, %%zmm19\n\t"
        "vpaddq %%zmm19, %%zmm3, %%zmm3\n\t"
        "vpandq %%zmm12, %%zmm14, %%zmm20\n\t"
        "vpopcntq %%zmm20, %%zmm20\n\t"
        "vpaddq %%zmm20, %%zmm4, %%zmm4\n\t"
        "vpandq %%zmm13, %%zmm14, %%zmm21\n\t"
        "vpopcntq %%zmm21, %%zmm21\n\t"
        "vpaddq %%zmm21, %%zmm5, %%zmm5\n\t"
        "vpandq %%zmm12, %%zmm15, %%zmm22\n\t"
        "vpopcntq %%zmm22, %%zmm22\n\t"
        "vpaddq %%zmm22, %%zmm6, %%zmm6\n\t"
        "vpandq %%zmm13, %%zmm15, %%zmm23\n\t"
        "vpopcntq %%zmm23, %%zmm23\n\t"
        "vpaddq %%zmm23, %%zmm7, %%zmm7\n\t"
        "vpandq %%zmm12, %%zmm14, %%zmm24\n\t"
        "vpopcntq %%zmm24, %%zmm24\n\t"
        "vpaddq %%zmm24, %%zmm8, %%zmm8\n\t"
        "vpandq %%zmm13, %%zmm14, %%zmm25\n\t"
        "vpopcntq %%zmm25, %%zmm25\n\t"
        "vpaddq %%zmm25, %%zmm9, %%zmm9\n\t"
        "vpandq %%zmm12, %%zmm15, %%zmm26\n\t"
        "vpopcntq %%zmm26, %%zmm26\n\t"
        "vpaddq %%zmm26, %%zmm10, %%zmm10\n\t"
        "vpandq %%zmm13, %%zmm15, %%zmm27\n\t"
        "vpopcntq %%zmm27, %%zmm27\n\t"
        "vpaddq %%zmm27, %%zmm11, %%zmm11\n\t"
        :
        :
        : "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9", "xmm10",
          "xmm11", "xmm16", "xmm17", "xmm18", "xmm19", "xmm20", "xmm21", "xmm22", "xmm23", "xmm24",
          "xmm25", "xmm26", "xmm27");
  }
}

// table lookup: vpermb reads a 64-byte table of partial sums indexed by 6
// bits, three 2-bit weights (or codes) per lane: 64 lanes x 3 products.
__attribute__((target("avx512f"))) void vpermb_loop(long n) {
  for (long i = 0; i < n; ++i) {
    asm volatile(
        "vpermb %%zmm15, %%zmm12, %%zmm16\n\t"
        "vpaddb %%zmm16, %%zmm0, %%zmm0\n\t"
        "vpermb %%zmm15, %%zmm13, %%zmm17\n\t"
        "vpaddb %%zmm17, %%zmm1, %%zmm1\n\t"
        "vpermb %%zmm15, %%zmm12, %%zmm18\n\t"
        "vpaddb %%zmm18, %%zmm2, %%zmm2\n\t"
        "vpermb %%zmm15, %%zmm13, %%zmm19\n\t"
        "vpaddb %%zmm19, %%zmm3, %%zmm3\n\t"
        "vpermb %%zmm15, %%zmm12, %%zmm20\n\t"
        "vpaddb %%zmm20, %%zmm4, %%zmm4\n\t"
        "vpermb %%zmm15, %%zmm13, %%zmm21\n\t"
        "vpaddb %%zmm21, %%zmm5, %%zmm5\n\t"
        "vpermb %%zmm15, %%zmm12, %%zmm22\n\t"
        "vpaddb %%zmm22, %%zmm6, %%zmm6\n\t"
        "vpermb %%zmm15, %%zmm13, %%zmm23\n\t"
        "vpaddb %%zmm23, %%zmm7, %%zmm7\n\t"
        "vpermb %%zmm15, %%zmm12, %%zmm24\n\t"
        "vpaddb %%zmm24, %%zmm8, %%zmm8\n\t"
        "vpermb %%zmm15, %%zmm13, %%zmm25\n\t"
        "vpaddb %%zmm25, %%zmm9, %%zmm9\n\t"
        :
        :
        : "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9", "xmm10",
          "xmm11", "xmm16", "xmm17", "xmm18", "xmm19", "xmm20", "xmm21", "xmm22", "xmm23", "xmm24",
          "xmm25", "xmm26", "xmm27");
  }
}

// AMX: 8 tdpbusd on 4 accumulator tiles per iteration (16 x 16 x 64
// products each), operands already in tiles.
__attribute__((target("amx-tile,amx-int8"))) void tdpbusd_loop(long n) {
  struct alignas(64) Config {
    uint8_t palette = 1, start = 0, reserved[14] = {};
    uint16_t colsb[16] = {64, 64, 64, 64, 64, 64, 64, 64};
    uint8_t rows[16] = {16, 16, 16, 16, 16, 16, 16, 16};
  } cfg;
  __asm__ volatile("" ::: "memory");
  _tile_loadconfig(&cfg);
  _tile_zero(0);
  _tile_zero(1);
  _tile_zero(2);
  _tile_zero(3);
  _tile_zero(4);
  _tile_zero(5);
  _tile_zero(6);
  _tile_zero(7);
  for (long i = 0; i < n; ++i) {
    _tile_dpbusd(0, 4, 6);
    _tile_dpbusd(1, 4, 7);
    _tile_dpbusd(2, 5, 6);
    _tile_dpbusd(3, 5, 7);
    _tile_dpbusd(0, 4, 6);
    _tile_dpbusd(1, 4, 7);
    _tile_dpbusd(2, 5, 6);
    _tile_dpbusd(3, 5, 7);
  }
  _tile_release();
}

void BM_PeakMaddubsAvx2(benchmark::State& state) {
  run_peak(state, __builtin_cpu_supports("avx2"), 64.0 * 10, "GOPS", maddubs_loop);
}
void BM_PeakPshufbAvx2(benchmark::State& state) {
  run_peak(state, __builtin_cpu_supports("avx2"), 64.0 * 10, "GOPS", pshufb_loop);
}
void BM_PeakFmaAvx2(benchmark::State& state) {
  run_peak(state, __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"), 16.0 * 12,
           "GFLOPS", fma256_loop);
}
void BM_PeakDpbusdAvx512(benchmark::State& state) {
  run_peak(state, k::kernel_set(Isa::kAvx512Vnni) != nullptr, 128.0 * 12, "GOPS", dpbusd_loop);
}
void BM_PeakBitSerial2x2Avx512(benchmark::State& state) {
  run_peak(state, __builtin_cpu_supports("avx512vpopcntdq"), 2.0 * 512 * 3, "GOPS", bitserial_loop);
}
void BM_PeakVpermb3x2Avx512(benchmark::State& state) {
  run_peak(state, __builtin_cpu_supports("avx512vbmi"), 2.0 * 64 * 3 * 10, "GOPS", vpermb_loop);
}
void BM_PeakTdpbusdAmx(benchmark::State& state) {
  run_peak(state, k::kernel_set(Isa::kAmx) != nullptr, 2.0 * 16 * 16 * 64 * 8, "GOPS",
           tdpbusd_loop);
}
void BM_PeakFmaAvx512(benchmark::State& state) {
  run_peak(state, __builtin_cpu_supports("avx512f"), 32.0 * 12, "GFLOPS", fma512_loop);
}

void qconv_args(benchmark::internal::Benchmark* b) {
  for (int s = 0; s < 5; ++s) {
    for (int bits : {2, 4, 8}) b->Args({s, bits});
  }
}

void w2a2_args(benchmark::internal::Benchmark* b) {
  for (int s = 0; s < 5; ++s) b->Args({s, 2});
}

}  // namespace

BENCHMARK(BM_QConvAvx2)->Apply(qconv_args)->Unit(benchmark::kMicrosecond)->UseRealTime();
BENCHMARK(BM_QConvAvx2Lut)->Apply(w2a2_args)->Unit(benchmark::kMicrosecond)->UseRealTime();
BENCHMARK(BM_QConvAvx512Vnni)->Apply(qconv_args)->Unit(benchmark::kMicrosecond)->UseRealTime();
BENCHMARK(BM_QConvAmx)->Apply(qconv_args)->Unit(benchmark::kMicrosecond)->UseRealTime();
BENCHMARK(BM_QConvRef)->Args({0, 4})->Args({4, 4})->Unit(benchmark::kMicrosecond)->UseRealTime();
BENCHMARK(BM_FConvAvx2)->DenseRange(-2, 4)->Unit(benchmark::kMicrosecond)->UseRealTime();
BENCHMARK(BM_FConvAvx512)->DenseRange(-2, 4)->Unit(benchmark::kMicrosecond)->UseRealTime();
BENCHMARK(BM_PeakMaddubsAvx2)->UseRealTime();
BENCHMARK(BM_PeakPshufbAvx2)->UseRealTime();
BENCHMARK(BM_PeakFmaAvx2)->UseRealTime();
BENCHMARK(BM_PeakDpbusdAvx512)->UseRealTime();
BENCHMARK(BM_PeakFmaAvx512)->UseRealTime();
BENCHMARK(BM_PeakTdpbusdAmx)->UseRealTime();
BENCHMARK(BM_PeakBitSerial2x2Avx512)->UseRealTime();
BENCHMARK(BM_PeakVpermb3x2Avx512)->UseRealTime();
