// Precompiled header for the LibTorch-facing targets: the LibTorch headers are
// most of the compile time of every translation unit. Sources still include the
// narrow headers they need; this file only makes them cheap.
#pragma once
#include <ATen/ATen.h>
#include <fmt/format.h>
#include <torch/autograd.h>
#include <torch/nn/module.h>
#include <torch/nn/modules/batchnorm.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/linear.h>
#include <torch/optim.h>
#include <torch/serialize.h>
#include <string>
#include <vector>
