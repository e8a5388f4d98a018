// Helpers shared by the training-side tests.
#pragma once
#include <ATen/ATen.h>
#include <torch/nn/module.h>

#include <map>
#include <string>

namespace pactq::test {

// Every parameter and buffer by name (a copy), as a safetensors file holds them.
inline std::map<std::string, at::Tensor> model_tensors(torch::nn::Module& model) {
  std::map<std::string, at::Tensor> out;
  for (const auto& p : model.named_parameters()) out[p.key()] = p.value().detach().clone();
  for (const auto& b : model.named_buffers()) out[b.key()] = b.value().clone();
  return out;
}

}  // namespace pactq::test
