// Stub (tests/compat): the part of LibTorch 2.x's at::Context torch_compat.h uses.
#pragma once
#define PACTQ_TORCH_2X_STUB 1
#include <c10/core/Allocator.h>

namespace at {
class Context {
 public:
  static bool hasCUDART();
};
Context& globalContext();
}  // namespace at
