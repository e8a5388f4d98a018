#include "pactq/train/calibrate.h"

#include <ATen/core/grad_mode.h>

#include <algorithm>

#include "pactq/train/device.h"

namespace pactq::train {

std::vector<nn::AlphaCalibrator::LayerResult> calibrate_alphas(models::QuantModel& model,
                                                               const data::DataLoader& loader,
                                                               const TrainConfig& config) {
  // Training mode: the activations' inputs as training will see them (batch
  // statistics; an untrained model's running statistics are meaningless). The
  // running statistics those passes update are put back afterwards.
  const bool was_training = model.is_training();
  std::vector<at::Tensor> buffers;
  for (const auto& b : model.buffers()) buffers.push_back(b.clone());
  model.train();
  nn::AlphaCalibrator calibrator(nn::parse_alpha_calibration(config.alpha_calibration));
  {
    at::NoGradGuard no_grad;
    const int64_t batches = std::min<int64_t>(config.calibration_batches, loader.num_batches());
    const at::Device device = module_device(model);
    for (int64_t b = 0; b < batches; ++b) {
      model.forward(loader.make_batch(0, b).images.to(device, /*non_blocking=*/true));
    }
    auto live = model.buffers();
    for (size_t i = 0; i < live.size(); ++i) live[i].copy_(buffers[i]);
  }
  auto results = calibrator.apply(model);
  model.train(was_training);
  return results;
}

}  // namespace pactq::train
