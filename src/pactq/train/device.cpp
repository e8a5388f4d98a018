#include "pactq/train/device.h"

#include <cstdlib>
#include <stdexcept>

#include "pactq/common/torch_compat.h"

namespace pactq::train {
namespace {

[[noreturn]] void fail(const std::string& spec, const std::string& why) {
  throw std::invalid_argument("--device " + spec + ": " + why);
}

// -1: plain "cuda"; >= 0: "cuda:N". Throws for anything but cpu/auto/cuda[:N].
int64_t parse_cuda_index(const std::string& spec) {
  if (spec == "cuda") return -1;
  const std::string digits = spec.rfind("cuda:", 0) == 0 ? spec.substr(5) : "";
  if (digits.empty() || digits.size() > 4 ||
      digits.find_first_not_of("0123456789") != std::string::npos) {
    fail("'" + spec + "'", "expected cpu, cuda, cuda:N or auto");
  }
  return std::stoll(digits);
}

}  // namespace

void check_device_spec(const std::string& spec) {
  if (spec != "cpu" && spec != "auto") parse_cuda_index(spec);
}

at::Device resolve_device(const std::string& spec) {
  if (spec == "cpu") return at::Device(at::kCPU);
  if (spec == "auto") {
    return compat::cuda_device_count() > 0 ? at::Device(at::kCUDA, 0) : at::Device(at::kCPU);
  }
  const int64_t index = parse_cuda_index(spec);
  if (!compat::cuda_compiled()) {
    fail(spec,
         "this pactq is built with a CPU-only LibTorch (no CUDA support compiled in); use "
         "--device cpu, or build against a CUDA LibTorch (README, GPU)");
  }
  const int64_t count = compat::cuda_device_count();
  if (count == 0) {
    const char* visible = std::getenv("CUDA_VISIBLE_DEVICES");
    fail(spec, std::string("LibTorch has CUDA but sees no CUDA device (no driver or GPU") +
                   (visible ? std::string(", or CUDA_VISIBLE_DEVICES='") + visible + "'" : "") +
                   ")");
  }
  if (index >= count) {
    fail(spec, "only " + std::to_string(count) +
                   " CUDA device(s) visible (cuda:0..cuda:" + std::to_string(count - 1) + ")");
  }
  return at::Device(at::kCUDA, static_cast<c10::DeviceIndex>(index < 0 ? 0 : index));
}

at::Device module_device(const torch::nn::Module& module) {
  for (const auto& p : module.parameters()) return p.device();
  for (const auto& b : module.buffers()) return b.device();
  return at::Device(at::kCPU);
}

void synchronize(const at::Device& device) {
  if (device.is_cuda()) compat::cuda_synchronize(device.index());
}

void tune_for_device(const at::Device& device) {
  if (device.is_cuda()) at::globalContext().setBenchmarkCuDNN(true);
}

void use_channels_last(torch::nn::Module& module) {
  at::NoGradGuard no_grad;
  for (at::Tensor& p : module.parameters()) {
    if (p.dim() == 4) p.set_data(p.contiguous(at::MemoryFormat::ChannelsLast));
  }
}

at::Tensor to_channels_last(const at::Tensor& batch) {
  return batch.dim() == 4 ? batch.contiguous(at::MemoryFormat::ChannelsLast) : batch;
}

void check_amp_spec(const std::string& amp) {
  if (amp != "off" && amp != "bf16") {
    throw std::invalid_argument("--amp '" + amp +
                                "': expected off or bf16 (float16 needs loss scaling, which "
                                "pactq does not do)");
  }
}

compat::AutocastScope autocast_for(const at::Device& device, const std::string& amp) {
  return compat::AutocastScope(device.type(), at::kBFloat16, amp == "bf16");
}

}  // namespace pactq::train
