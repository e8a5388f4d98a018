#include "pactq/train/weights_file.h"

#include <filesystem>
#include <map>

#include "pactq/common/format.h"
#include "pactq/train/checkpoint.h"
#include "pactq/train/model_setup.h"
#include "pactq/train/safetensors.h"

namespace pactq::train {

namespace {

std::string join_floats(const std::vector<float>& values) {
  std::string s;
  for (size_t i = 0; i < values.size(); ++i) s += pactq::format("{}{}", i ? "," : "", values[i]);
  return s;
}

}  // namespace

WeightsFileReport write_weights_from_checkpoint(const std::string& checkpoint,
                                                const std::string& out) {
  const LoadedCheckpoint header = read_checkpoint_header(checkpoint);
  const TrainConfig& config = header.config;
  models::QuantModelPtr model = build_model(config, config.num_classes);
  load_checkpoint(checkpoint, *model, nullptr);
  std::map<std::string, at::Tensor> tensors;
  for (const auto& p : model->named_parameters()) tensors[p.key()] = p.value().detach();
  for (const auto& b : model->named_buffers()) tensors[b.key()] = b.value();
  std::map<std::string, std::string> metadata{
      {"format", "pactq trained weights"},
      {"model", config.model},
      {"precision", config.precision_policy().summary()},
      {"epochs_trained", std::to_string(header.state.epoch)},
      {"pactq_config", config.to_json().dump()},
  };
  // What --init-from takes as the input normalisation when none is given.
  if (!config.mean.empty()) metadata["normalize_mean"] = join_floats(config.mean);
  if (!config.std.empty()) metadata["normalize_std"] = join_floats(config.std);
  write_safetensors(out, tensors, metadata);
  WeightsFileReport r;
  r.path = out;
  r.model = config.model;
  r.tensors = static_cast<int64_t>(tensors.size());
  r.bytes = static_cast<int64_t>(std::filesystem::file_size(out));
  return r;
}

}  // namespace pactq::train
