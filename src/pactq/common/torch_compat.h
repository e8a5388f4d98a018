// The one place for differences between the LibTorch versions pactq builds
// against (Debian's CPU-only 1.13 and the pip 2.x with CUDA). Everything else
// uses APIs common to both.
#pragma once
#include <ATen/Context.h>
#include <torch/cuda.h>

#include <cstdint>

namespace pactq::compat {

// Whether this LibTorch was built with CUDA (its CUDA hooks are linked in).
// at::hasCUDA() and torch::cuda::is_available() are also false when CUDA is
// compiled in but no device is visible, so they cannot tell the two apart;
// hasCUDART() answers "compiled in" on 1.13 and 2.x alike.
inline bool cuda_compiled() {
  return at::globalContext().hasCUDART();
}

// CUDA devices visible to this process (0 on a CPU-only build, without a
// driver, or with CUDA_VISIBLE_DEVICES hiding them).
inline int64_t cuda_device_count() {
  return cuda_compiled() ? static_cast<int64_t>(torch::cuda::device_count()) : 0;
}

// Waits for the work queued on CUDA device `index` (-1: the current one).
inline void cuda_synchronize(int64_t index = -1) {
  torch::cuda::synchronize(index);
}

}  // namespace pactq::compat
