#include "pactq/train/step_benchmark.h"

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <c10/core/CPUAllocator.h>

#include <algorithm>
#include <chrono>
#include <mutex>
#include <unordered_map>
#include <utility>
#include <vector>

#include "pactq/common/memory_tuning.h"
#include "pactq/nn/alpha.h"
#include "pactq/train/counting_allocator.h"
#include "pactq/train/compute_threads.h"
#include "pactq/train/cuda_graph_step.h"
#include "pactq/train/device.h"
#include "pactq/train/foreach_sgd.h"
#include "pactq/train/model_setup.h"
#include "pactq/train/optimizer.h"

namespace pactq::train {

double StepTiming::median() const {
  if (seconds.empty()) return 0;
  std::vector<double> s = seconds;
  std::sort(s.begin(), s.end());
  const size_t n = s.size();
  return n % 2 ? s[n / 2] : 0.5 * (s[n / 2 - 1] + s[n / 2]);
}

namespace {

struct Variant {
  models::QuantModelPtr model;
  std::unique_ptr<torch::optim::Optimizer> optimizer;
  std::unique_ptr<CudaGraphStep> graph;  // --cuda-graph
};

Variant make_variant(const TrainConfig& c, const at::Device& device, bool channels_last,
                     bool cuda_graph) {
  Variant v;
  v.model = build_model(c, c.num_classes > 0 ? c.num_classes : 10);
  if (!device.is_cpu()) v.model->to(device);
  if (channels_last) use_channels_last(*v.model);
  v.model->train();
  v.optimizer = make_optimizer(c, *v.model);  // the trainer's, alpha group included
  if (cuda_graph) v.graph = std::make_unique<CudaGraphStep>(*v.model);
  return v;
}

// The trainer's step: forward (under --amp), backward, update, alpha guard.
void step(Variant& v, nn::AlphaGuard& guard, const at::Tensor& x, const at::Tensor& y,
          const std::string& amp) {
  auto forward = [&](const at::Tensor& images, const at::Tensor& labels) {
    const compat::AutocastScope autocast = autocast_for(images.device(), amp);
    const at::Tensor logits = v.model->forward(images);
    return std::make_pair(at::cross_entropy_loss(logits, labels), logits);
  };
  if (v.graph) {
    v.graph->run(x, y, forward);
  } else {
    v.optimizer->zero_grad();
    forward(x, y).first.backward();
  }
  optimizer_step(*v.optimizer, x.device());
  guard.after_step();
}

at::Tensor synthetic_input(const models::QuantModel& m, int batch) {
  const auto in = m.input_shape();
  return at::randn({batch, in.channels, in.height, in.width});
}

// The trainer's alpha guard on a GPU checks finiteness every 50 steps: what
// the benchmark times is what training runs.
int64_t guard_interval(const at::Device& device) {
  return device.is_cuda() ? 50 : 1;
}

}  // namespace

std::vector<StepTiming> benchmark_training_steps(const std::vector<TrainConfig>& configs,
                                                 const StepBenchmarkOptions& o) {
  set_compute_threads(o.threads);
  keep_freed_memory_mapped();
  // Denormals make float math 10-100x slower on x86 and appear once a
  // repeatedly-fitted batch drives gradients toward zero; the trainer flushes
  // them too, so the benchmark measures what training runs.
  at::globalContext().setFlushDenormal(true);
  at::manual_seed(0);
  const at::Device device = resolve_device(o.device);
  check_amp_spec(o.amp);
  tune_for_device(device);
  std::vector<Variant> variants;
  std::vector<nn::AlphaGuard> guards;
  std::vector<StepTiming> timings;
  for (const TrainConfig& c : configs) {
    variants.push_back(make_variant(c, device, o.channels_last, o.cuda_graph));
    guards.emplace_back(*variants.back().model, guard_interval(device));
    timings.push_back({c.model + " W" + c.wbits + "/A" + c.abits, {}});
  }
  at::Tensor x = synthetic_input(*variants.front().model, o.batch_size).to(device);
  if (o.channels_last) x = to_channels_last(x);
  const at::Tensor y =
      at::randint(0, variants.front().model->num_classes(), {o.batch_size}).to(device);
  for (int i = 0; i < o.warmup; ++i) {
    for (size_t k = 0; k < variants.size(); ++k) step(variants[k], guards[k], x, y, o.amp);
  }
  synchronize(device);
  for (int i = 0; i < o.steps; ++i) {
    for (size_t k = 0; k < variants.size(); ++k) {
      const auto t0 = std::chrono::steady_clock::now();
      step(variants[k], guards[k], x, y, o.amp);
      synchronize(device);  // a queued step is not a finished one
      timings[k].seconds.push_back(
          std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    }
  }
  return timings;
}

double StepMemory::peak_mb() const {
  return peak_bytes / (1024.0 * 1024.0);
}

std::vector<StepMemory> measure_step_memory(const std::vector<TrainConfig>& configs,
                                            int batch_size) {
  static CountingAllocator counter(c10::GetCPUAllocator());
  c10::SetCPUAllocator(&counter, /*priority=*/100);
  std::vector<StepMemory> out;
  at::manual_seed(0);
  for (const TrainConfig& c : configs) {
    Variant v = make_variant(c, at::Device(at::kCPU), false, false);
    nn::AlphaGuard guard(*v.model);
    const at::Tensor x = synthetic_input(*v.model, batch_size);
    const at::Tensor y = at::zeros({batch_size}, at::kLong);
    step(v, guard, x, y, "off");  // optimiser state and caches exist from here on
    counter.reset_peak();
    const int64_t before = counter.live();
    step(v, guard, x, y, "off");
    out.push_back({c.model + " W" + c.wbits + "/A" + c.abits, counter.peak() - before});
  }
  c10::SetCPUAllocator(counter.base(), /*priority=*/101);
  return out;
}

}  // namespace pactq::train
