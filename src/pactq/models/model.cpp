#include "pactq/models/model.h"

namespace pactq::models {

namespace {
bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() &&
         s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}
}  // namespace

ParameterCount count_parameters(const torch::nn::Module& model) {
  ParameterCount c;
  for (const auto& p : model.named_parameters(/*recurse=*/true)) {
    (ends_with(p.key(), "alpha") ? c.alphas : c.weights) += p.value().numel();
  }
  for (const auto& b : model.named_buffers(/*recurse=*/true)) {
    if (!ends_with(b.key(), "num_batches_tracked")) c.buffers += b.value().numel();
  }
  return c;
}

}  // namespace pactq::models
