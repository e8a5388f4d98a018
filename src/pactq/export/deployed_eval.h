// The accuracy users get: the model as exported (the .pqm semantics, BN
// folded, integer codes) run by the deploy-exact reference executor, which the
// runtime matches bit for bit on the integer path. It can differ from the
// fake-quantized model's accuracy by float noise at rounding boundaries
// (reference_executor.h).
#pragma once
#include <vector>

#include "pactq/data/loader.h"
#include "pactq/models/model.h"
#include "pactq/train/evaluate.h"

namespace pactq::export_ {

// pixels: a loader of raw pixels in [0, 1] (mean 0, std 1), as `pactq run`
// feeds the runtime; mean/std: the model's normalisation (the input node's).
// The model's train/eval mode is restored.
train::EvalResult evaluate_deployed(models::QuantModel& model, const std::vector<float>& mean,
                                    const std::vector<float>& std, data::DataLoader& pixels);

}  // namespace pactq::export_
