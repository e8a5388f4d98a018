#include "pactq/train/data_parallel.h"

#include <unistd.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>

#include "pactq/common/atomic_file.h"
#include "pactq/common/format.h"

namespace pactq::train {

DataParallel::DataParallel(const distributed::DistOptions& options, const at::Device& device)
    : device_(device) {
  if (!options.enabled()) return;
  group_ = distributed::ProcessGroup::connect(options, device);
  bn_reducer_ = [this](at::Tensor& t) {
    group_->allreduce_sum(t, "synchronising BatchNorm statistics");
  };
}

DataParallel::~DataParallel() {
  reducer_.reset();  // its hooks go before the group they call
  if (!private_copy_.empty()) {
    std::error_code ignored;
    std::filesystem::remove(private_copy_, ignored);
  }
}

at::Tensor DataParallel::for_group(const at::Tensor& host) const {
  return group_ && group_->backend() == "nccl" ? host.to(device_) : host;
}

std::string DataParallel::share_checkpoint(const std::string& last_path, bool resume) {
  const bool here = resume && std::filesystem::exists(last_path);
  if (!group_) return here ? last_path : "";
  at::Tensor bytes;
  if (lead() && here) {
    std::ifstream in(last_path, std::ios::binary);
    const std::string data((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    if (!in.good() && !in.eof()) throw std::runtime_error("cannot read " + last_path);
    bytes = at::empty({static_cast<int64_t>(data.size())}, at::kByte);
    std::memcpy(bytes.data_ptr(), data.data(), data.size());
  }
  std::vector<at::Tensor> size{
      for_group(at::full({1}, lead() && here ? bytes.numel() : 0, at::kLong))};
  group_->broadcast(size, 0, "sharing whether rank 0 resumes");
  const int64_t n = size[0].item<int64_t>();
  if (n == 0) return "";
  if (!lead()) bytes = at::empty({n}, at::kByte);
  std::vector<at::Tensor> payload{for_group(bytes)};
  group_->broadcast(payload, 0, "sending rank 0's checkpoint");
  if (lead()) return last_path;
  payload[0] = payload[0].cpu();
  private_copy_ = (std::filesystem::temp_directory_path() /
                   pactq::format("pactq-rank{}-{}-last.pt", rank(), ::getpid()))
                      .string();
  write_bytes_atomically(private_copy_, payload[0].data_ptr(), static_cast<size_t>(n));
  return private_copy_;
}

void DataParallel::broadcast_model(torch::nn::Module& model) {
  if (!group_) return;
  std::vector<at::Tensor> all = model.parameters();
  for (const at::Tensor& b : model.buffers()) all.push_back(b);
  distributed::broadcast_tensors(*group_, all, 0, "broadcasting rank 0's model");
}

void DataParallel::broadcast_buffers(torch::nn::Module& model) {
  if (!group_) return;
  distributed::broadcast_tensors(*group_, model.buffers(), 0,
                                 "broadcasting rank 0's BatchNorm statistics");
}

void DataParallel::attach(torch::nn::Module& model) {
  if (!group_) return;
  std::vector<at::Tensor> trainable;
  for (const at::Tensor& p : model.parameters())
    if (p.requires_grad()) trainable.push_back(p);
  reducer_ = std::make_unique<distributed::GradientReducer>(*group_, trainable);
}

void DataParallel::before_backward() {
  if (reducer_) reducer_->prepare();
}

void DataParallel::after_backward() {
  if (reducer_) reducer_->finish();
}

double DataParallel::comm_wait_per_step() const {
  return reducer_ && reducer_->steps() > 0 ? reducer_->wait_seconds() / reducer_->steps() : 0;
}

EvalResult DataParallel::sum(const EvalResult& local) {
  if (!group_) return local;
  const double n = static_cast<double>(local.count);
  at::Tensor sums = at::tensor(
      {local.loss * n, static_cast<double>(local.correct), local.top5 * n / 100.0, n}, at::kDouble);
  sums = for_group(sums);
  group_->allreduce_sum(sums, "summing the evaluation over ranks");
  sums = sums.cpu();
  EvalResult r = local;
  const auto* s = sums.data_ptr<double>();
  r.count = std::llround(s[3]);
  r.correct = std::llround(s[1]);
  if (r.count > 0) {
    r.loss = s[0] / s[3];
    r.top1 = 100.0 * s[1] / s[3];
    r.top5 = 100.0 * std::round(s[2]) / s[3];
  }
  return r;
}

void DataParallel::gather_epoch_sums(TrainState& state) {
  if (!group_) return;
  at::Tensor sums = at::tensor({state.epoch_loss_sum, static_cast<double>(state.epoch_correct),
                                static_cast<double>(state.epoch_seen)},
                               at::kDouble);
  sums = for_group(sums);
  group_->allreduce_sum(sums, "summing the epoch's training loss over ranks");
  sums = sums.cpu();
  const auto* s = sums.data_ptr<double>();
  state.epoch_loss_sum = lead() ? s[0] : 0;
  state.epoch_correct = lead() ? std::llround(s[1]) : 0;
  state.epoch_seen = lead() ? std::llround(s[2]) : 0;
}

double DataParallel::from_lead(double value) {
  if (!group_) return value;
  std::vector<at::Tensor> v{for_group(at::full({1}, value, at::kDouble))};
  group_->broadcast(v, 0, "sharing rank 0's decision");
  return v[0].item<double>();
}

bool DataParallel::any(bool local) {
  if (!group_) return local;
  at::Tensor flag = for_group(at::full({1}, local ? 1.0 : 0.0, at::kDouble));
  group_->allreduce_sum(flag, "agreeing whether to stop");
  return flag.item<double>() > 0;
}

void DataParallel::finish() {
  if (!group_) return;
  group_->barrier("waiting for every rank to finish");
  group_->leave();
}

}  // namespace pactq::train
