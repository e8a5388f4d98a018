#include "pactq/train/distillation.h"

#include <ATen/core/grad_mode.h>

#include "pactq/train/model_setup.h"

namespace pactq::train {

// --distill-from: the float model of the same architecture, frozen, in eval mode.
models::QuantModelPtr make_teacher(const TrainConfig& config, int64_t classes) {
  if (config.distill_from.empty()) return nullptr;
  TrainConfig fp = config;
  fp.wbits = fp.abits = "fp";
  fp.first_last = "fp";
  fp.act_quant = "relu";
  fp.overrides.clear();
  models::QuantModelPtr teacher = build_model(fp, classes);
  load_float_weights(*teacher, config.distill_from);
  teacher->eval();
  for (auto& p : teacher->parameters()) p.set_requires_grad(false);
  return teacher;
}

// (1 - w) * CE + w * T^2 * KL(teacher_T || student_T), per sample then mean
// (Hinton et al.: T^2 keeps the soft term's gradient scale independent of T).
at::Tensor distillation_loss(const TrainConfig& config, const at::Tensor& hard,
                             const at::Tensor& logits, models::QuantModel& teacher,
                             const at::Tensor& images) {
  at::Tensor teacher_logits;
  {
    at::NoGradGuard no_grad;
    teacher_logits = teacher.forward(images);
  }
  const double t = config.distill_temperature, w = config.distill_weight;
  const at::Tensor soft =
      at::kl_div(at::log_softmax(logits / t, 1), at::log_softmax(teacher_logits / t, 1),
                 at::Reduction::None, /*log_target=*/true)
          .sum(1)
          .mean();
  return hard * (1 - w) + soft * (w * t * t);
}

}  // namespace pactq::train
