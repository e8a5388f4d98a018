// The one place for differences between the LibTorch versions pactq builds
// against (Debian's CPU-only 1.13 and the pip 2.x with CUDA). Everything else
// uses APIs common to both.
#pragma once
#include <ATen/Context.h>
#include <ATen/autocast_mode.h>
#include <c10/core/Allocator.h>
#include <torch/cuda.h>
#include <torch/optim/optimizer.h>
#include <torch/version.h>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <sstream>
#include <string>
#include <type_traits>

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

// ---- optimiser state ----
// A parameter's state (momentum buffer, ...) in a torch::optim optimiser, or
// nullptr. 1.13 keys the state by the TensorImpl address printed as a string;
// later releases by the address itself.
template <class Optimizer>
torch::optim::OptimizerParamState* optimizer_param_state(Optimizer& optimizer,
                                                         const at::Tensor& param) {
  auto& state = optimizer.state();
  using Key = typename std::decay_t<decltype(state)>::key_type;
  Key key{};
  if constexpr (std::is_same_v<Key, std::string>) {
    std::ostringstream address;
    address << param.unsafeGetTensorImpl();
    key = address.str();
  } else {
    key = param.unsafeGetTensorImpl();
  }
  const auto it = state.find(key);
  return it == state.end() ? nullptr : it->second.get();
}

// ---- allocators ----
// c10::Allocator changed in 2.3: `allocate` is no longer const, and
// `copy_data(dest, src, count) const` is pure virtual (1.13 has none). A class
// deriving from compat::AllocatorBase implements `allocate_data(size_t) const`
// instead of `allocate`; the adapter overrides `allocate` with whichever
// constness the installed c10::Allocator declares and gives `copy_data` a
// memcpy where it exists. Both are detected from c10::Allocator itself rather
// than from the version number. tests/compat/ compiles this (and
// train/counting_allocator.h) against a stub of the 2.3+ signature.
namespace detail {

template <class Base>
using allocate_const_signature = c10::DataPtr (Base::*)(size_t) const;

template <class Base>
inline constexpr bool allocate_is_const =
    std::is_same_v<decltype(&Base::allocate), allocate_const_signature<Base>>;

template <class Base, class = void>
struct has_copy_data : std::false_type {};
template <class Base>
struct has_copy_data<Base, std::void_t<decltype(&Base::copy_data)>> : std::true_type {};

// Adds the memcpy copy_data where Base declares it (2.3+). Partial
// specialisations on the dependent Base, so the one that does not apply is
// never instantiated.
template <class Base, bool = has_copy_data<Base>::value>
class WithCopyData : public Base {};
template <class Base>
class WithCopyData<Base, true> : public Base {
 public:
  void copy_data(void* dest, const void* src, std::size_t count) const override {
    if (count != 0) std::memcpy(dest, src, count);
  }
};

template <class Base, bool = allocate_is_const<Base>>
class AllocatorAdapter;
template <class Base>
class AllocatorAdapter<Base, true> : public WithCopyData<Base> {  // 1.13 - 2.2
 public:
  c10::DataPtr allocate(size_t n) const final { return allocate_data(n); }

 protected:
  virtual c10::DataPtr allocate_data(size_t n) const = 0;
};
template <class Base>
class AllocatorAdapter<Base, false> : public WithCopyData<Base> {  // 2.3+
 public:
  c10::DataPtr allocate(size_t n) final { return allocate_data(n); }

 protected:
  virtual c10::DataPtr allocate_data(size_t n) const = 0;
};

}  // namespace detail

// Base for pactq's c10 allocators: implement `allocate_data(size_t) const`.
using AllocatorBase = detail::AllocatorAdapter<c10::Allocator>;

// ---- autocast (--amp) ----
// 1.13 has one switch and dtype per device kind (set_enabled / set_cpu_enabled,
// set_autocast_gpu_dtype / set_autocast_cpu_dtype); 2.4 made them functions of
// the device type and later releases drop the old names.
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 4)
#define PACTQ_AUTOCAST_BY_DEVICE_TYPE 1
#endif

inline bool autocast_enabled(at::DeviceType type) {
#if defined(PACTQ_AUTOCAST_BY_DEVICE_TYPE)
  return at::autocast::is_autocast_enabled(type);
#else
  return type == at::kCUDA ? at::autocast::is_enabled() : at::autocast::is_cpu_enabled();
#endif
}

inline at::ScalarType autocast_dtype(at::DeviceType type) {
#if defined(PACTQ_AUTOCAST_BY_DEVICE_TYPE)
  return at::autocast::get_autocast_dtype(type);
#else
  return type == at::kCUDA ? at::autocast::get_autocast_gpu_dtype()
                           : at::autocast::get_autocast_cpu_dtype();
#endif
}

inline void set_autocast(at::DeviceType type, bool enabled, at::ScalarType dtype) {
#if defined(PACTQ_AUTOCAST_BY_DEVICE_TYPE)
  at::autocast::set_autocast_enabled(type, enabled);
  at::autocast::set_autocast_dtype(type, dtype);
#else
  if (type == at::kCUDA) {
    at::autocast::set_enabled(enabled);
    at::autocast::set_autocast_gpu_dtype(dtype);
  } else {
    at::autocast::set_cpu_enabled(enabled);
    at::autocast::set_autocast_cpu_dtype(dtype);
  }
#endif
}

// Autocast to `dtype` on `type` (CPU or CUDA) for the scope's lifetime, as
// Python's `with torch.autocast(...)`: ops on autocast's lists (convolutions,
// matmuls) run in `dtype`, the rest as they are. Nothing when !enabled.
class AutocastScope {
 public:
  AutocastScope(at::DeviceType type, at::ScalarType dtype, bool enabled)
      : type_(type), active_(enabled) {
    if (!active_) return;
    was_enabled_ = autocast_enabled(type_);
    was_dtype_ = autocast_dtype(type_);
    set_autocast(type_, true, dtype);
    at::autocast::increment_nesting();
  }
  ~AutocastScope() {
    if (!active_) return;
    // The cast-weight cache lives while any scope is open, as in Python.
    if (at::autocast::decrement_nesting() == 0) at::autocast::clear_cache();
    set_autocast(type_, was_enabled_, was_dtype_);
  }
  AutocastScope(const AutocastScope&) = delete;
  AutocastScope& operator=(const AutocastScope&) = delete;

 private:
  at::DeviceType type_;
  bool active_;
  bool was_enabled_ = false;
  at::ScalarType was_dtype_ = at::kFloat;
};

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
