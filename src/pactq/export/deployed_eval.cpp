#include "pactq/export/deployed_eval.h"

#include <ATen/core/grad_mode.h>

#include <stdexcept>

#include "pactq/export/plan_builder.h"
#include "pactq/export/reference_executor.h"
#include "pactq/train/device.h"

namespace pactq::export_ {

train::EvalResult evaluate_deployed(models::QuantModel& model, const std::vector<float>& mean,
                                    const std::vector<float>& std, data::DataLoader& pixels) {
  // The exporter reads weights through host pointers: callers on a GPU pass a
  // CPU copy (train::cpu_copy).
  if (!train::module_device(model).is_cpu()) {
    throw std::logic_error("evaluate_deployed: the model must be on the CPU");
  }
  const bool was_training = model.is_training();
  at::NoGradGuard no_grad;
  const ExportPlan plan = build_export_plan(model, mean, std);  // puts the model in eval mode
  const ReferenceExecutor reference(plan);
  model.train(was_training);
  return train::evaluate(
      model, [&](const at::Tensor& p) { return reference.logits(p.contiguous()); }, pixels);
}

}  // namespace pactq::export_
