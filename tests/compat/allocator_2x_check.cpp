// Compile-only check (tests/compat/CMakeLists.txt): pactq's allocator, through
// the shim in common/torch_compat.h, against the LibTorch 2.3+ c10::Allocator
// (stub_torch_2x/) as well as the installed LibTorch. Without the shim,
// CountingAllocator either overrides an `allocate` that does not exist with
// that constness, or stays abstract for want of `copy_data`.
#include "pactq/train/counting_allocator.h"

#include <type_traits>

#if defined(PACTQ_EXPECT_TORCH_2X_STUB) && !defined(PACTQ_TORCH_2X_STUB)
#error "the stub LibTorch 2.x headers were not the ones included"
#endif

namespace {

static_assert(!std::is_abstract_v<pactq::train::CountingAllocator>);
static_assert(std::is_base_of_v<c10::Allocator, pactq::train::CountingAllocator>);

// What step_benchmark.cpp does with it: install it and allocate through the base.
[[maybe_unused]] c10::DataPtr allocate_through_base(c10::Allocator* base, size_t n) {
  static pactq::train::CountingAllocator counter(base);
  c10::Allocator& as_c10 = counter;
  return as_c10.allocate(n);
}

}  // namespace
