#include "pactq/train/checkpoint.h"

#include <torch/serialize/input-archive.h>
#include <torch/serialize/output-archive.h>

#include <filesystem>
#include <stdexcept>

#include "pactq/common/atomic_file.h"
#include "pactq/nn/alpha.h"

namespace pactq::train {
namespace {

torch::serialize::InputArchive open_archive(const std::string& path) {
  if (!std::filesystem::is_regular_file(path)) {
    throw std::runtime_error(path + ": checkpoint not found");
  }
  torch::serialize::InputArchive archive;
  try {
    archive.load_from(path);
  } catch (const std::exception& e) {
    throw std::runtime_error(path + ": not a readable pactq checkpoint (" +
                             std::string(e.what()).substr(0, 200) + ")");
  }
  return archive;
}

int64_t read_int(torch::serialize::InputArchive& a, const std::string& key) {
  c10::IValue v;
  a.read(key, v);
  return v.toInt();
}

double read_double(torch::serialize::InputArchive& a, const std::string& key) {
  c10::IValue v;
  a.read(key, v);
  return v.toDouble();
}

}  // namespace

void save_checkpoint(const std::string& path, const TrainConfig& config, torch::nn::Module& model,
                     torch::optim::Optimizer* optimizer, const TrainState& state) {
  torch::serialize::OutputArchive archive;
  archive.write("format", c10::IValue(std::string("pactq-checkpoint-1")));
  archive.write("config", c10::IValue(config.to_json().dump()));
  torch::serialize::OutputArchive model_archive;
  for (const auto& p : model.named_parameters())
    model_archive.write(p.key(), p.value().detach(), false);
  for (const auto& b : model.named_buffers()) model_archive.write(b.key(), b.value(), true);
  archive.write("model", model_archive);
  if (optimizer != nullptr) {
    torch::serialize::OutputArchive opt_archive;
    optimizer->save(opt_archive);
    archive.write("optimizer", opt_archive);
  }
  torch::serialize::OutputArchive s;
  s.write("epoch", c10::IValue(state.epoch));
  s.write("batch_in_epoch", c10::IValue(state.batch_in_epoch));
  s.write("global_step", c10::IValue(state.global_step));
  s.write("best_top1", c10::IValue(state.best_top1));
  s.write("epoch_loss_sum", c10::IValue(state.epoch_loss_sum));
  s.write("epoch_correct", c10::IValue(state.epoch_correct));
  s.write("epoch_seen", c10::IValue(state.epoch_seen));
  archive.write("state", s);
  replace_file_atomically(path, [&](const std::string& temp) { archive.save_to(temp); });
}

LoadedCheckpoint read_checkpoint_header(const std::string& path) {
  auto archive = open_archive(path);
  LoadedCheckpoint out;
  try {
    c10::IValue config;
    archive.read("config", config);
    out.config = TrainConfig::from_json(nlohmann::json::parse(config.toStringRef()));
    torch::serialize::InputArchive s;
    archive.read("state", s);
    out.state.epoch = read_int(s, "epoch");
    out.state.batch_in_epoch = read_int(s, "batch_in_epoch");
    out.state.global_step = read_int(s, "global_step");
    out.state.best_top1 = read_double(s, "best_top1");
    out.state.epoch_loss_sum = read_double(s, "epoch_loss_sum");
    out.state.epoch_correct = read_int(s, "epoch_correct");
    out.state.epoch_seen = read_int(s, "epoch_seen");
  } catch (const std::exception& e) {
    throw std::runtime_error(path + ": not a pactq checkpoint (missing config or state: " +
                             std::string(e.what()).substr(0, 200) + ")");
  }
  return out;
}

void load_checkpoint(const std::string& path, torch::nn::Module& model,
                     torch::optim::Optimizer* optimizer) {
  auto archive = open_archive(path);
  torch::serialize::InputArchive model_archive;
  archive.read("model", model_archive);
  torch::NoGradGuard no_grad;
  auto load_one = [&](const std::string& name, at::Tensor& target, bool is_buffer) {
    at::Tensor value;
    if (!model_archive.try_read(name, value, is_buffer)) {
      throw std::runtime_error(path + ": checkpoint has no tensor '" + name +
                               "' (was it trained with another model or precision?)");
    }
    if (value.sizes() != target.sizes()) {
      throw std::runtime_error(path + ": tensor '" + name + "' has shape " +
                               c10::str(value.sizes()) + " but the model expects " +
                               c10::str(target.sizes()));
    }
    target.copy_(value);
  };
  for (auto& p : model.named_parameters()) load_one(p.key(), p.value(), false);
  for (auto& b : model.named_buffers()) load_one(b.key(), b.value(), true);
  nn::check_alphas(model, path);
  if (optimizer != nullptr) {
    torch::serialize::InputArchive opt_archive;
    if (!archive.try_read("optimizer", opt_archive)) {
      throw std::runtime_error(path + ": checkpoint has no optimiser state to resume from");
    }
    optimizer->load(opt_archive);
  }
}

}  // namespace pactq::train
