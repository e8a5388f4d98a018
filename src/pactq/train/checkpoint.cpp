#include "pactq/train/checkpoint.h"

#include <torch/serialize/input-archive.h>
#include <torch/serialize/output-archive.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <stdexcept>

#include "pactq/common/atomic_file.h"
#include "pactq/nn/alpha.h"
#include "pactq/train/device.h"
#include "pactq/train/optimizer.h"

namespace pactq::train {
namespace {

// LibTorch's messages end in a C++ backtrace: keep the first line.
std::string first_line(const std::exception& e) {
  const auto* torch_error = dynamic_cast<const c10::Error*>(&e);
  const std::string m = torch_error ? torch_error->what_without_backtrace() : e.what();
  return m.substr(0, std::min<size_t>(m.find('\n'), 200));
}

[[noreturn]] void not_a_checkpoint(const std::string& path, const std::exception& e) {
  throw std::runtime_error(path + ": not a pactq checkpoint or truncated (" + first_line(e) + ")");
}

torch::serialize::InputArchive open_archive(const std::string& path) {
  if (!std::filesystem::is_regular_file(path)) {
    throw std::runtime_error(path + ": checkpoint not found");
  }
  torch::serialize::InputArchive archive;
  try {
    // Mapped to the CPU: a checkpoint written on a GPU machine loads anywhere.
    archive.load_from(path, at::Device(at::kCPU));
  } catch (const std::exception& e) {
    not_a_checkpoint(path, e);
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
  // CPU copies (free for CPU tensors), so the file loads on any machine.
  torch::serialize::OutputArchive model_archive;
  for (const auto& p : model.named_parameters())
    model_archive.write(p.key(), p.value().detach().to(at::kCPU), false);
  for (const auto& b : model.named_buffers())
    model_archive.write(b.key(), b.value().to(at::kCPU), true);
  archive.write("model", model_archive);
  if (optimizer != nullptr) {
    const at::Device device = module_device(model);
    torch::serialize::OutputArchive opt_archive;
    move_optimizer_state(*optimizer, at::kCPU);
    optimizer->save(opt_archive);
    move_optimizer_state(*optimizer, device);
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
  // Our own writes, so a full disk reports errno (EFBIG, ENOSPC), not a backtrace.
  replace_file_atomically(path, [&](const std::string& temp) {
    FILE* f = std::fopen(temp.c_str(), "wb");
    if (f == nullptr)
      throw std::runtime_error(path + ": cannot write checkpoint: " + std::strerror(errno));
    // After a failed write, report success to LibTorch anyway: a short count
    // makes its zip writer throw from a destructor, which aborts the process.
    int write_errno = 0;
    try {
      archive.save_to([&](const void* data, size_t size) -> size_t {
        if (write_errno == 0 && std::fwrite(data, 1, size, f) != size)
          write_errno = errno != 0 ? errno : EIO;
        return size;
      });
    } catch (...) {
      std::fclose(f);
      throw;
    }
    if (std::fclose(f) != 0 && write_errno == 0) write_errno = errno != 0 ? errno : EIO;
    if (write_errno != 0) {
      throw std::runtime_error(path + ": cannot write checkpoint: " + std::strerror(write_errno) +
                               " (the previous checkpoint is kept)");
    }
  });
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
    throw std::runtime_error(
        path + ": not a pactq checkpoint (missing config or state: " + first_line(e) + ")");
  }
  return out;
}

void load_checkpoint(const std::string& path, torch::nn::Module& model,
                     torch::optim::Optimizer* optimizer) {
  auto archive = open_archive(path);
  torch::serialize::InputArchive model_archive;
  try {
    archive.read("model", model_archive);
  } catch (const c10::Error& e) {
    not_a_checkpoint(path, e);
  }
  torch::NoGradGuard no_grad;
  auto load_one = [&](const std::string& name, at::Tensor& target, bool is_buffer) {
    at::Tensor value;
    bool found = false;
    try {
      found = model_archive.try_read(name, value, is_buffer);
    } catch (const c10::Error& e) {  // a damaged record
      not_a_checkpoint(path, e);
    }
    if (!found) {
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
    try {
      optimizer->load(opt_archive);
    } catch (const c10::Error& e) {
      throw std::runtime_error(path + ": optimiser state does not fit (" + first_line(e) + ")");
    }
    move_optimizer_state(*optimizer, module_device(model));  // loaded on the CPU
  }
}

}  // namespace pactq::train
