// Micro-benchmarks of the quantizers as autograd functions: forward + backward
// of PACT (fused CPU kernel vs ATen composite vs plain ReLU as the float
// baseline) on a ResNet20-sized activation, and DoReFa/SAWB weight
// quantization on ResNet20 conv weights.
//   build/pactq_bench --benchmark_filter=Pact --benchmark_repetitions=9
//   --benchmark_report_aggregates_only
#include <ATen/ATen.h>
#include <benchmark/benchmark.h>

#include "pactq/quant/pact.h"
#include "pactq/quant/weight_quant.h"
#include "pactq/train/compute_threads.h"

namespace {

at::Tensor activation() {
  return at::randn({128, 16, 32, 32}) * 3;
}

void pact_forward_backward(benchmark::State& state, pactq::quant::PactImpl impl) {
  pactq::train::set_compute_threads(static_cast<int>(state.range(0)));
  const at::Tensor x0 = activation();
  const at::Tensor grad = at::randn_like(x0);
  at::Tensor alpha = at::full({1}, 2.0f).set_requires_grad(true);
  for (auto _ : state) {
    at::Tensor x = x0.detach().requires_grad_(true);
    at::Tensor y = pactq::quant::pact(x, alpha, 4, impl);
    y.backward(grad);
    benchmark::DoNotOptimize(x.grad().data_ptr());
    alpha.mutable_grad().reset();
  }
  state.SetBytesProcessed(state.iterations() * x0.numel() * 4 * 2);
}

void BM_PactFused(benchmark::State& s) {
  pact_forward_backward(s, pactq::quant::PactImpl::kFused);
}
void BM_PactComposite(benchmark::State& s) {
  pact_forward_backward(s, pactq::quant::PactImpl::kComposite);
}

void BM_ReluFloat(benchmark::State& state) {
  pactq::train::set_compute_threads(static_cast<int>(state.range(0)));
  const at::Tensor x0 = activation();
  const at::Tensor grad = at::randn_like(x0);
  for (auto _ : state) {
    at::Tensor x = x0.detach().requires_grad_(true);
    at::relu(x).backward(grad);
    benchmark::DoNotOptimize(x.grad().data_ptr());
  }
  state.SetBytesProcessed(state.iterations() * x0.numel() * 4 * 2);
}

void weight_quant(benchmark::State& state, pactq::quant::WeightQuantKind kind) {
  pactq::train::set_compute_threads(2);
  at::Tensor w = (at::randn({64, 64, 3, 3}) * 0.1).requires_grad_(true);
  const at::Tensor grad = at::randn_like(w);
  for (auto _ : state) {
    pactq::quant::quantize_weight(w, 4, kind).backward(grad);
    w.mutable_grad().reset();
  }
}
void BM_DoReFaWeight(benchmark::State& s) {
  weight_quant(s, pactq::quant::WeightQuantKind::kDoReFa);
}
void BM_SawbWeight(benchmark::State& s) {
  weight_quant(s, pactq::quant::WeightQuantKind::kSawb);
}

}  // namespace

BENCHMARK(BM_PactFused)->Arg(1)->Arg(2)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_PactComposite)->Arg(1)->Arg(2)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_ReluFloat)->Arg(1)->Arg(2)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_DoReFaWeight)->Unit(benchmark::kMicrosecond)->UseRealTime();
BENCHMARK(BM_SawbWeight)->Unit(benchmark::kMicrosecond)->UseRealTime();
