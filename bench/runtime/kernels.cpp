// Micro-benchmarks of the runtime's conv kernels on the ResNet20 shapes, for
// every ISA variant and the 2/4/8-bit widths, reported in GOPS (2 ops per
// multiply-accumulate), plus the peaks of vpmaddubsw, vpdpbusd and fp32 FMA.
//   build/pactq_runtime_bench --benchmark_filter='QConv|FConv|Peak' --benchmark_repetitions=5
//   --benchmark_report_aggregates_only
#include <benchmark/benchmark.h>
#include <immintrin.h>

#include <random>
#include <vector>

#include "pactq/runtime/kernels/kernels.h"

namespace {

namespace k = pactq::rt::kernels;

struct Shape {
  int hw, cin, cout, stride;
};
// ResNet20's 3x3 convs: stage 1, the two downsampling convs, stages 2 and 3.
const Shape kShapes[] = {
    {32, 16, 16, 1}, {32, 16, 32, 2}, {16, 32, 32, 1}, {16, 32, 64, 2}, {8, 64, 64, 1}};

k::ConvGeom geometry(const Shape& s) {
  k::ConvGeom g;
  g.in_h = g.in_w = s.hw;
  g.in_c = s.cin;
  g.out_c = s.cout;
  g.kh = g.kw = 3;
  g.sh = g.sw = s.stride;
  g.ph = g.pw = 1;
  g.out_h = (s.hw + 2 - 3) / s.stride + 1;
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
    kernel->run_rows(packed, in.data(), e, out.data(), 0, g.out_h);
    benchmark::DoNotOptimize(out.data());
  }
  const double macs = static_cast<double>(g.out_h) * g.out_w * g.out_c * g.cin_g * 9;
  state.counters["GOPS"] = benchmark::Counter(
      2 * macs, benchmark::Counter::kIsIterationInvariantRate, benchmark::Counter::kIs1000);
  state.SetLabel(std::to_string(s.hw) + "x" + std::to_string(s.hw) + "x" + std::to_string(s.cin) +
                 "->" + std::to_string(s.cout) + " s" + std::to_string(s.stride) + " W" +
                 std::to_string(bits) + "A" + std::to_string(bits));
}

void BM_QConvAvx2(benchmark::State& s) {
  run_qconv(s, k::qconv_avx2_kernel());
}
void BM_QConvAvx512Vnni(benchmark::State& s) {
  run_qconv(s, k::qconv_avx512_vnni_kernel());
}
void BM_QConvRef(benchmark::State& s) {
  run_qconv(s, &k::qconv_ref_kernel());
}

// Float conv (the fp first/last layers): ResNet20's first conv
// (32x32x3 -> 16) and the 3x3 shapes above, per ISA variant.
const Shape kFirstConv = {32, 3, 16, 1};

void run_fconv(benchmark::State& state, k::FConvRowsFn fn) {
  if (fn == nullptr) {
    state.SkipWithError("ISA not available on this CPU");
    return;
  }
  const Shape& s = state.range(0) < 0 ? kFirstConv : kShapes[state.range(0)];
  const k::ConvGeom g = geometry(s);
  std::mt19937 rng(2);
  std::normal_distribution<float> d;
  std::vector<float> w(static_cast<size_t>(g.out_c) * g.cin_g * 9),
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
  const double macs = static_cast<double>(g.out_h) * g.out_w * g.out_c * g.cin_g * 9;
  state.counters["GOPS"] = benchmark::Counter(
      2 * macs, benchmark::Counter::kIsIterationInvariantRate, benchmark::Counter::kIs1000);
  state.SetLabel(std::to_string(s.hw) + "x" + std::to_string(s.hw) + "x" + std::to_string(s.cin) +
                 "->" + std::to_string(s.cout));
}
void BM_FConvAvx2(benchmark::State& s) {
  run_fconv(s, k::fconv_rows_avx2());
}
void BM_FConvAvx512(benchmark::State& s) {
  run_fconv(s, k::fconv_rows_avx512());
}

// Peak throughput of the multiply instructions on one core, the way a conv
// inner loop uses them: acc = op(acc, a, w) with kChains independent
// accumulators that stay in registers (10 + 2 operands fit AVX2's 16 ymm), so
// only the execution ports limit it. Ops are counted like the conv's: 2 per
// multiply-accumulate. The empty asm statements keep the compiler from
// hoisting the loop-invariant products out of the loop.
constexpr int kChains = 10;
constexpr int kInner = 1024;
#define PACTQ_CHAINS(X) X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7) X(8) X(9)

__attribute__((target("avx2"))) void BM_PeakMaddubsAvx2(benchmark::State& state) {
  if (!__builtin_cpu_supports("avx2")) {
    state.SkipWithError("no AVX2");
    return;
  }
  __m256i a = _mm256_set1_epi8(3), w = _mm256_set1_epi8(-2);
#define PACTQ_DECL(i) __m256i r##i = _mm256_setzero_si256();
  PACTQ_CHAINS(PACTQ_DECL)
#undef PACTQ_DECL
  for (auto _ : state) {
    for (int n = 0; n < kInner; ++n) {
      asm volatile("" : "+x"(a), "+x"(w));
#define PACTQ_STEP(i) r##i = _mm256_add_epi16(r##i, _mm256_maddubs_epi16(a, w));
      PACTQ_CHAINS(PACTQ_STEP)
#undef PACTQ_STEP
    }
#define PACTQ_USE(i) benchmark::DoNotOptimize(r##i);
    PACTQ_CHAINS(PACTQ_USE)
#undef PACTQ_USE
  }
  // 32 u8 x s8 products per instruction (summed in pairs into int16).
  state.counters["GOPS"] =
      benchmark::Counter(64.0 * kChains * kInner, benchmark::Counter::kIsIterationInvariantRate,
                         benchmark::Counter::kIs1000);
}

__attribute__((target("avx512f,avx512bw,avx512vnni"))) void BM_PeakDpbusdAvx512(
    benchmark::State& state) {
  if (k::qconv_avx512_vnni_kernel() == nullptr) {
    state.SkipWithError("no AVX-512 VNNI");
    return;
  }
  __m512i a = _mm512_set1_epi8(3), w = _mm512_set1_epi8(-2);
#define PACTQ_DECL(i) __m512i r##i = _mm512_setzero_si512();
  PACTQ_CHAINS(PACTQ_DECL)
#undef PACTQ_DECL
  for (auto _ : state) {
    for (int n = 0; n < kInner; ++n) {
      asm volatile("" : "+v"(a), "+v"(w));
#define PACTQ_STEP(i) r##i = _mm512_dpbusd_epi32(r##i, a, w);
      PACTQ_CHAINS(PACTQ_STEP)
#undef PACTQ_STEP
    }
#define PACTQ_USE(i) benchmark::DoNotOptimize(r##i);
    PACTQ_CHAINS(PACTQ_USE)
#undef PACTQ_USE
  }
  // 64 u8 x s8 products per instruction, accumulated into int32.
  state.counters["GOPS"] =
      benchmark::Counter(128.0 * kChains * kInner, benchmark::Counter::kIsIterationInvariantRate,
                         benchmark::Counter::kIs1000);
}

// The fp32 baseline's instruction (oneDNN uses it on an AVX-512 CPU).
__attribute__((target("avx512f"))) void BM_PeakFmaAvx512(benchmark::State& state) {
  if (!__builtin_cpu_supports("avx512f")) {
    state.SkipWithError("no AVX-512");
    return;
  }
  __m512 a = _mm512_set1_ps(1.0001f), w = _mm512_set1_ps(0.9999f);
#define PACTQ_DECL(i) __m512 r##i = _mm512_setzero_ps();
  PACTQ_CHAINS(PACTQ_DECL)
#undef PACTQ_DECL
  for (auto _ : state) {
    for (int n = 0; n < kInner; ++n) {
      asm volatile("" : "+v"(a), "+v"(w));
#define PACTQ_STEP(i) r##i = _mm512_fmadd_ps(r##i, a, w);
      PACTQ_CHAINS(PACTQ_STEP)
#undef PACTQ_STEP
    }
#define PACTQ_USE(i) benchmark::DoNotOptimize(r##i);
    PACTQ_CHAINS(PACTQ_USE)
#undef PACTQ_USE
  }
  state.counters["GFLOPS"] =
      benchmark::Counter(32.0 * kChains * kInner, benchmark::Counter::kIsIterationInvariantRate,
                         benchmark::Counter::kIs1000);
}
#undef PACTQ_CHAINS

void qconv_args(benchmark::internal::Benchmark* b) {
  for (int s = 0; s < 5; ++s) {
    for (int bits : {2, 4, 8}) b->Args({s, bits});
  }
}

}  // namespace

BENCHMARK(BM_QConvAvx2)->Apply(qconv_args)->Unit(benchmark::kMicrosecond)->UseRealTime();
BENCHMARK(BM_QConvAvx512Vnni)->Apply(qconv_args)->Unit(benchmark::kMicrosecond)->UseRealTime();
BENCHMARK(BM_QConvRef)->Args({0, 4})->Args({4, 4})->Unit(benchmark::kMicrosecond)->UseRealTime();
BENCHMARK(BM_FConvAvx2)->DenseRange(-1, 4)->Unit(benchmark::kMicrosecond)->UseRealTime();
BENCHMARK(BM_FConvAvx512)->DenseRange(-1, 4)->Unit(benchmark::kMicrosecond)->UseRealTime();
BENCHMARK(BM_PeakMaddubsAvx2)->UseRealTime();
BENCHMARK(BM_PeakDpbusdAvx512)->UseRealTime();
BENCHMARK(BM_PeakFmaAvx512)->UseRealTime();
