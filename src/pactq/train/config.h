// TrainConfig: everything a training run depends on. Written to OUT/config.json
// as resolved and stored in every checkpoint, so eval/export/resume rebuild the
// same model without the original command line.
#pragma once
#include <nlohmann/json.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "pactq/distributed/options.h"
#include "pactq/nn/precision_policy.h"

namespace pactq::train {

struct TrainConfig {
  // what
  std::string model = "resnet20";
  std::string dataset = "cifar10";
  std::string data_dir;
  int num_classes = 0;  // 0: the dataset's
  // precision
  std::string wbits = "4";
  std::string abits = "4";
  std::string first_last = "fp";
  std::string weight_quant = "dorefa";
  std::string act_quant = "pact";
  std::vector<std::string> overrides;  // PATTERN=BITS ...
  double alpha_init = 10.0;
  // "" (alpha_init for every layer), "mse" (each layer's alpha minimises the
  // quantization error of its input, measured on training batches of the
  // initial model) or "pNN.N" (that percentile of the input).
  std::string alpha_calibration;
  int calibration_batches = 8;
  // Weight decay of the PACT alphas (the paper's lambda_alpha), same convention
  // as weight_decay (lambda * alpha added to alpha's gradient, i.e. the penalty
  // (lambda / 2) * alpha^2). Unset: equal to weight_decay, as in the paper.
  std::optional<double> alpha_decay;
  // optimisation
  int epochs = 200;
  int batch_size = 128;
  std::string optimizer = "sgd";
  double lr = 0.1;
  double momentum = 0.9;
  double weight_decay = 2e-4;
  std::string schedule = "multistep:60,120";
  double warmup_epochs = 0;
  std::string init_from;
  // Knowledge distillation: the float model of the same architecture (a
  // .safetensors file as --init-from takes) as teacher; the loss is
  // (1 - w) * CE(labels) + w * T^2 * KL(teacher_T || student_T).
  std::string distill_from;
  double distill_weight = 0.5;
  double distill_temperature = 4.0;
  // data
  std::vector<float> mean;  // empty: the dataset's (or the --init-from file's)
  std::vector<float> std;
  int workers = 2;
  int64_t limit_train = 0;  // > 0: first N training samples only
  int64_t limit_test = 0;
  std::vector<std::string> train_files;  // CIFAR: the training files to read (empty: all)
  int64_t val_split = 0;                 // > 0: training images held out for validation
  // Also evaluate the deployed model (the .pqm semantics, through the
  // deploy-exact reference executor) each epoch; best.pt is then chosen by it.
  bool eval_deployed = false;
  bool skip_bad_images = false;
  bool augment = true;
  // run
  std::string out = "runs/run";
  bool resume = false;
  uint64_t seed = 1;
  int threads = 0;              // 0: all cores
  std::string device = "auto";  // cpu | cuda | cuda:N | auto (CUDA when usable); train/device.h
  std::string amp = "off";      // off | bf16: autocast convolutions/linears (train/device.h)
  bool channels_last = false;   // NHWC parameters and batches (train/device.h)
  bool cuda_graph = false;  // capture forward + backward in a CUDA graph (train/cuda_graph_step.h)
  // Steps between host reads of the running loss/accuracy and the alpha
  // guard's finite check; 0: by device (1 on the CPU, 50 on CUDA). Not a flag
  // nor stored: lets tests run the GPU's deferred path on the CPU.
  int64_t host_sync_every = 0;
  int64_t max_steps = -1;        // >= 0: stop after this many optimiser steps
  int64_t checkpoint_every = 0;  // > 0: also checkpoint every N steps within an epoch
  bool quiet = false;
  // Data parallelism (distributed/options.h); only the world size is stored,
  // since a run resumes with the world size it started with.
  distributed::DistOptions dist;
  // Synchronised BatchNorm: batch statistics over every rank's batch (as one
  // process with the whole batch), not per rank (nn/batch_norm.h).
  bool sync_bn = false;

  double resolved_alpha_decay() const { return alpha_decay.value_or(weight_decay); }
  nn::PrecisionPolicy precision_policy() const;
  void validate() const;  // throws std::invalid_argument naming the option
  nlohmann::json to_json() const;
  static TrainConfig from_json(const nlohmann::json& j);
};

}  // namespace pactq::train
