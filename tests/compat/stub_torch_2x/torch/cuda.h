// Stub (tests/compat): LibTorch 2.x's torch/cuda.h (the functions torch_compat.h uses).
#pragma once
#define PACTQ_TORCH_2X_STUB 1
#include <cstddef>
#include <cstdint>

namespace torch::cuda {
size_t device_count();
void synchronize(int64_t device_index = -1);
}  // namespace torch::cuda
