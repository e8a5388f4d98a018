#include "pactq/train/model_setup.h"

#include <ATen/core/grad_mode.h>

#include <sstream>
#include <stdexcept>

#include "pactq/common/format.h"
#include "pactq/models/registry.h"
#include "pactq/nn/alpha.h"
#include "pactq/train/safetensors.h"

namespace pactq::train {

models::QuantModelPtr build_model(const TrainConfig& config, int64_t num_classes) {
  models::ModelOptions options;
  options.num_classes = num_classes;
  options.alpha_init = config.alpha_init;
  models::QuantModelPtr model = models::create_model(config.model, options);
  config.precision_policy().apply(*model);
  return model;
}

models::QuantModelPtr cpu_copy(const TrainConfig& config, int64_t num_classes,
                               torch::nn::Module& model) {
  models::QuantModelPtr copy = build_model(config, num_classes);
  at::NoGradGuard no_grad;
  auto params = copy->parameters();
  auto buffers = copy->buffers();
  const auto src_params = model.parameters();
  const auto src_buffers = model.buffers();
  for (size_t i = 0; i < params.size(); ++i) params[i].copy_(src_params.at(i));
  for (size_t i = 0; i < buffers.size(); ++i) buffers[i].copy_(src_buffers.at(i));
  copy->train(model.is_training());
  return copy;
}

std::string InitReport::summary() const {
  std::string s = pactq::format("loaded {} tensors", loaded.size());
  auto list = [](const std::vector<std::string>& names) {
    std::string out;
    for (size_t i = 0; i < names.size() && i < 6; ++i) out += (i ? ", " : "") + names[i];
    if (names.size() > 6) out += pactq::format(", ... ({} in all)", names.size());
    return out;
  };
  if (!missing.empty()) s += "; not in the file (kept at init): " + list(missing);
  if (!unexpected.empty()) s += "; in the file but not in the model (ignored): " + list(unexpected);
  return s;
}

InitReport load_float_weights(torch::nn::Module& model, const std::string& path) {
  SafetensorsFile file = read_safetensors(path);
  InitReport report;
  at::NoGradGuard no_grad;
  auto take = [&](const std::string& name, at::Tensor& target) {
    auto it = file.tensors.find(name);
    if (it == file.tensors.end()) {
      report.missing.push_back(name);
      return;
    }
    if (it->second.sizes() != target.sizes()) {
      throw std::runtime_error(path + ": tensor '" + name + "' has shape " +
                               c10::str(it->second.sizes()) + " but the model's is " +
                               c10::str(target.sizes()));
    }
    target.copy_(it->second.to(target.scalar_type()));
    report.loaded.push_back(name);
    file.tensors.erase(it);
  };
  for (auto& p : model.named_parameters()) take(p.key(), p.value());
  for (auto& b : model.named_buffers()) take(b.key(), b.value());
  for (const auto& left : file.tensors) report.unexpected.push_back(left.first);
  if (report.loaded.empty()) {
    throw std::runtime_error(path + ": no tensor name matches the model (" + report.summary() +
                             ")");
  }
  nn::check_alphas(model, path);
  return report;
}

std::pair<std::vector<float>, std::vector<float>> normalization_from_metadata(
    const std::string& path) {
  const SafetensorsFile file = read_safetensors(path);
  auto parse = [&](const char* key) {
    std::vector<float> values;
    auto it = file.metadata.find(key);
    if (it == file.metadata.end()) return values;
    std::stringstream ss(it->second);
    std::string item;
    while (std::getline(ss, item, ',')) values.push_back(std::stof(item));
    return values;
  };
  return {parse("normalize_mean"), parse("normalize_std")};
}

}  // namespace pactq::train
