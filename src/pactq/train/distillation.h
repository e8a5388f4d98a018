// Knowledge distillation (--distill-from): the quantized student learns from
// the float model's logits as well as from the labels, the standard way to
// recover low-bit accuracy in a fine-tune.
#pragma once
#include <ATen/ATen.h>

#include "pactq/models/model.h"
#include "pactq/train/config.h"

namespace pactq::train {

// The float model of config's architecture loaded from config.distill_from,
// frozen, in eval mode; nullptr when config.distill_from is empty.
models::QuantModelPtr make_teacher(const TrainConfig& config, int64_t classes);

// (1 - w) * hard + w * T^2 * KL(softmax(teacher / T) || softmax(student / T)),
// the KL summed over classes and averaged over the batch; w, T from config.
at::Tensor distillation_loss(const TrainConfig& config, const at::Tensor& hard,
                             const at::Tensor& logits, models::QuantModel& teacher,
                             const at::Tensor& images);

}  // namespace pactq::train
