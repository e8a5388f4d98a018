// Micro-benchmarks of the runtime's conv kernels on the ResNet20 shapes, for
// every ISA variant and the 2/4/8-bit widths, reported in GOPS (2 ops per
// multiply-accumulate), plus the machine's vpmaddubsw peak for comparison.
//   build/pactq_bench --benchmark_filter='QConv|Peak' --benchmark_repetitions=5
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
void BM_QConvRef(benchmark::State& s) {
  run_qconv(s, &k::qconv_ref_kernel());
}

void BM_FConvFloat(benchmark::State& state) {
  const Shape& s = kShapes[state.range(0)];
  const k::ConvGeom g = geometry(s);
  std::mt19937 rng(2);
  std::normal_distribution<float> d;
  std::vector<float> w(static_cast<size_t>(g.out_c) * g.cin_g * 9),
      in(g.in_h * g.in_w * g.in_c + 16);
  for (auto& v : w) v = d(rng);
  for (auto& v : in) v = d(rng);
  std::vector<float> scale(g.out_c, 1.f), bias(g.out_c, 0.f), out(g.out_h * g.out_w * g.out_c);
  k::PackedFConv packed;
  k::fconv_pack(g, w.data(), &packed);
  k::Epilogue e;
  e.scale = scale.data();
  e.bias = bias.data();
  const k::FConvRowsFn fn = k::fconv_rows_kernel();
  for (auto _ : state) {
    fn(packed, in.data(), false, 1.f, e, out.data(), 0, g.out_h);
    benchmark::DoNotOptimize(out.data());
  }
  const double macs = static_cast<double>(g.out_h) * g.out_w * g.out_c * g.cin_g * 9;
  state.counters["GOPS"] = benchmark::Counter(
      2 * macs, benchmark::Counter::kIsIterationInvariantRate, benchmark::Counter::kIs1000);
}

// vpmaddubsw throughput on one core, the way a conv inner loop uses it:
// acc += maddubs(a, w) with 12 independent accumulators, so only the
// multiplier ports limit it. Each instruction is 32 u8 x s8 products summed in
// pairs, counted as 64 ops like the conv's 2 ops per multiply-accumulate. The
// empty asm statements stop the compiler from hoisting the loop-invariant
// products out of the loop.
__attribute__((target("avx2"))) void BM_PeakMaddubs(benchmark::State& state) {
  if (!__builtin_cpu_supports("avx2")) {
    state.SkipWithError("no AVX2");
    return;
  }
  __m256i a0 = _mm256_set1_epi8(3), a1 = _mm256_set1_epi8(5), w = _mm256_set1_epi8(-2);
  __m256i r[12];
  for (auto& x : r) x = _mm256_setzero_si256();
  constexpr int kInner = 1024;
  for (auto _ : state) {
    for (int i = 0; i < kInner; ++i) {
      asm volatile("" : "+x"(a0), "+x"(a1), "+x"(w));
      const __m256i x0 = _mm256_xor_si256(w, a1), x1 = _mm256_xor_si256(w, a0),
                    x2 = _mm256_xor_si256(a0, a1);
      r[0] = _mm256_add_epi16(r[0], _mm256_maddubs_epi16(a0, w));
      r[1] = _mm256_add_epi16(r[1], _mm256_maddubs_epi16(a1, w));
      r[2] = _mm256_add_epi16(r[2], _mm256_maddubs_epi16(a0, a1));
      r[3] = _mm256_add_epi16(r[3], _mm256_maddubs_epi16(a1, a0));
      r[4] = _mm256_add_epi16(r[4], _mm256_maddubs_epi16(w, a0));
      r[5] = _mm256_add_epi16(r[5], _mm256_maddubs_epi16(w, a1));
      r[6] = _mm256_add_epi16(r[6], _mm256_maddubs_epi16(a0, a0));
      r[7] = _mm256_add_epi16(r[7], _mm256_maddubs_epi16(a1, a1));
      r[8] = _mm256_add_epi16(r[8], _mm256_maddubs_epi16(w, w));
      r[9] = _mm256_add_epi16(r[9], _mm256_maddubs_epi16(a0, x0));
      r[10] = _mm256_add_epi16(r[10], _mm256_maddubs_epi16(a1, x1));
      r[11] = _mm256_add_epi16(r[11], _mm256_maddubs_epi16(w, x2));
    }
    for (auto& x : r) benchmark::DoNotOptimize(x);
  }
  state.counters["GOPS"] =
      benchmark::Counter(64.0 * 12 * kInner, benchmark::Counter::kIsIterationInvariantRate,
                         benchmark::Counter::kIs1000);
}

void qconv_args(benchmark::internal::Benchmark* b) {
  for (int s = 0; s < 5; ++s) {
    for (int bits : {2, 4, 8}) b->Args({s, bits});
  }
}

}  // namespace

BENCHMARK(BM_QConvAvx2)->Apply(qconv_args)->Unit(benchmark::kMicrosecond)->UseRealTime();
BENCHMARK(BM_QConvRef)->Args({0, 4})->Args({4, 4})->Unit(benchmark::kMicrosecond)->UseRealTime();
BENCHMARK(BM_FConvFloat)->DenseRange(0, 4)->Unit(benchmark::kMicrosecond)->UseRealTime();
BENCHMARK(BM_PeakMaddubs)->UseRealTime();
