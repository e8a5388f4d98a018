// Helpers shared by the training-side tests.
#pragma once
#include <ATen/ATen.h>
#include <torch/nn/module.h>

#include <map>
#include <string>

#include "pactq/train/config.h"

namespace pactq::test {

// LeNet-5 W4/A4 on 2048 Fashion-MNIST images, 2 short epochs: the training
// tests' run (seconds on 2 cores); tests change what they exercise.
inline train::TrainConfig small_lenet_config(const std::string& out) {
  train::TrainConfig c;
  c.model = "lenet5";
  c.dataset = "fashion-mnist";
  c.wbits = c.abits = "4";
  c.alpha_init = 6;
  c.epochs = 2;
  c.batch_size = 64;
  c.lr = 0.05;
  c.weight_decay = 5e-4;
  c.schedule = "cosine";
  c.limit_train = 2048;
  c.limit_test = 1000;
  c.out = out;
  c.quiet = true;
  c.threads = 2;
  return c;
}

// Every parameter and buffer by name (a copy), as a safetensors file holds them.
inline std::map<std::string, at::Tensor> model_tensors(torch::nn::Module& model) {
  std::map<std::string, at::Tensor> out;
  for (const auto& p : model.named_parameters()) out[p.key()] = p.value().detach().clone();
  for (const auto& b : model.named_buffers()) out[b.key()] = b.value().clone();
  return out;
}

}  // namespace pactq::test
