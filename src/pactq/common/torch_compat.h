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

// ---- distributed (c10d) ----
// In 1.13 a backend such as ProcessGroupGloo *is* a c10d::ProcessGroup; from
// 2.0 it is a c10d::Backend that a ProcessGroup wraps. pactq talks to the
// backend directly (allreduce, broadcast, barrier have the same signatures in
// both), so only this alias differs. Defined where the c10d headers are
// included (distributed/), to keep them out of every other translation unit.
#if defined(PACTQ_COMPAT_C10D)
#include <torch/version.h>
#include <torch/csrc/distributed/c10d/Work.hpp>
#if TORCH_VERSION_MAJOR >= 2
#include <torch/csrc/distributed/c10d/Backend.hpp>
namespace pactq::compat {
using CollectiveBackend = c10d::Backend;
}
#else
#include <torch/csrc/distributed/c10d/ProcessGroup.hpp>
namespace pactq::compat {
using CollectiveBackend = c10d::ProcessGroup;
}
#endif
#endif
